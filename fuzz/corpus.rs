//! Seed inputs, one file per input, as libFuzzer keeps a corpus: `fuzz/corpus/<target>/` holds
//! what the cases and the unit tests use, `fuzz/regressions/<target>/` every input that once
//! failed.

use std::fs;
use std::path::{Path, PathBuf};

/// The inputs of `fuzz/<kind>/<target>/`, sorted by file name.
pub(crate) fn inputs(kind: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind)
        .join(target);
    let mut paths: Vec<PathBuf> = fs::read_dir(&folder)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", folder.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file() && !is_hidden(path))
        .collect();
    paths.sort();

    paths
        .into_iter()
        .map(|path| {
            let bytes = fs::read(&path)
                .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
            (path, bytes)
        })
        .collect()
}

/// The seed corpus of `target` and its regressions, as bytes.
pub(crate) fn seeds(target: &str) -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = inputs("corpus", target)
        .into_iter()
        .chain(inputs("regressions", target))
        .map(|(_, bytes)| bytes)
        .collect();
    if seeds.is_empty() {
        seeds.push(Vec::new());
    }
    seeds
}

/// `.keep` and other dot files hold a folder in git; they are not inputs.
fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| name.starts_with('.'))
}
