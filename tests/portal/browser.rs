//! Headless Chromium driven through WebDriver: chromedriver is started by the test on a free
//! port and killed, with the browsers it started, when the test ends.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

/// Where Debian's `chromium` and `chromium-driver` packages put the browser and its driver;
/// `CHROMIUM` and `CHROMEDRIVER` name others.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A running chromedriver, in a process group of its own.
pub(crate) struct Chromedriver {
    child: Child,
    addr: SocketAddr,
    chromium: PathBuf,
    profile: PathBuf,
}

impl Chromedriver {
    /// Starts chromedriver, or says plainly that `test` is skipped when the browser or its
    /// driver is not installed.
    pub(crate) fn start(test: &str) -> Option<Self> {
        let chromium = binary("CHROMIUM", CHROMIUM);
        let chromedriver = binary("CHROMEDRIVER", CHROMEDRIVER);
        for path in [&chromium, &chromedriver] {
            if !path.exists() {
                crate::say_skipped(format_args!(
                    "{test}: {} is not installed (apt-get install chromium chromium-driver)",
                    path.display()
                ));
                return None;
            }
        }

        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let child = std::os::unix::process::CommandExt::process_group(
            Command::new(&chromedriver)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            0,
        )
        .spawn()
        .expect("start chromedriver");
        let profile =
            std::env::temp_dir().join(format!("portal-chromium-{}-{port}", std::process::id()));
        let driver = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            chromium,
            profile,
        };

        let start = Instant::now();
        while TcpStream::connect(driver.addr).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "chromedriver did not listen on {}",
                driver.addr
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(driver)
    }

    /// A new headless Chromium session with a fresh profile.
    pub(crate) async fn session(&self) -> Client {
        let options = json!({
            "binary": self.chromium,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--window-size=1000,1150",
                format!("--user-data-dir={}", self.profile.display()),
            ],
        });
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".into(), options);

        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://{}", self.addr))
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let killed = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        if !killed.is_ok_and(|status| status.success()) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn binary(variable: &str, default: &str) -> PathBuf {
    std::env::var_os(variable).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

/// What the tests ask of a page.
pub(crate) struct Page<'a> {
    pub(crate) client: &'a Client,
}

impl Page<'_> {
    /// The element with `id`, which must be on the page.
    pub(crate) async fn element(&self, id: &str) -> Element {
        self.client
            .find(Locator::Id(id))
            .await
            .unwrap_or_else(|error| panic!("no element #{id}: {error}"))
    }

    /// The visible text of the element with `id`.
    pub(crate) async fn text(&self, id: &str) -> String {
        self.element(id)
            .await
            .text()
            .await
            .expect("the element's text")
    }

    /// Whether an element with `id` is on the page.
    pub(crate) async fn has(&self, id: &str) -> bool {
        !self
            .client
            .find_all(Locator::Id(id))
            .await
            .expect("find elements")
            .is_empty()
    }

    /// Clicks the element with `id`.
    pub(crate) async fn click(&self, id: &str) {
        self.element(id)
            .await
            .click()
            .await
            .unwrap_or_else(|error| panic!("click #{id}: {error}"));
    }

    /// Types `text` into the element with `id`.
    pub(crate) async fn type_into(&self, id: &str, text: &str) {
        self.element(id).await.send_keys(text).await.expect("type");
    }

    /// Whether the checkbox with `id` is ticked.
    pub(crate) async fn ticked(&self, id: &str) -> bool {
        self.element(id)
            .await
            .is_selected()
            .await
            .expect("is selected")
    }

    /// Runs `script` in the page and returns what it returns (a promise is awaited).
    pub(crate) async fn run(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|error| panic!("run {script}: {error}"))
    }

    /// Waits until the element with `id` is on the page.
    pub(crate) async fn wait_for(&self, id: &str) {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Id(id))
            .await
            .unwrap_or_else(|error| panic!("#{id} never showed: {error}"));
    }

    /// Waits until the save message has an outcome, and returns it.
    pub(crate) async fn outcome(&self) -> String {
        let start = Instant::now();
        loop {
            let message = self.text("message").await;
            if message.starts_with("Saved") || message.starts_with("Not saved") {
                return message;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no outcome after Save: {message:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Saves a screenshot of the page as `name`.png in the screenshot folder:
    /// `TOWER_CROSS_API_SCREENSHOTS` when set (docs/screenshots for the README), else one
    /// under the target directory.
    pub(crate) async fn screenshot(&self, name: &str) {
        let folder = std::env::var_os("TOWER_CROSS_API_SCREENSHOTS").map_or_else(
            || PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots"),
            PathBuf::from,
        );
        std::fs::create_dir_all(&folder).expect("the screenshot folder");

        let png = self.client.screenshot().await.expect("a screenshot");
        std::fs::write(folder.join(format!("{name}.png")), png).expect("save the screenshot");
    }
}
