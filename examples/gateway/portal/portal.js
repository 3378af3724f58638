// The Cross-API access settings page: the "Allow all APIs" switch, the search box, and Save
// through the administration API with the revision the page was loaded at (If-Match).
"use strict";

(function () {
  const form = document.getElementById("access");
  if (!form) {
    return;
  }

  const tenant = form.dataset.tenant;
  const api = form.dataset.api;
  const allowAll = document.getElementById("allow-all");
  const search = document.getElementById("search");
  const count = document.getElementById("search-count");
  const selected = document.getElementById("selected-count");
  const state = document.getElementById("state");
  const revision = document.getElementById("revision");
  const message = document.getElementById("message");
  const save = document.getElementById("save");
  const editable = form.dataset.editable === "true";
  const boxes = () => Array.from(form.querySelectorAll("input[name=allow]"));
  const items = () => Array.from(form.querySelectorAll("#apis li"));

  // The plain words for each rule the administration API can name in a 422.
  const rules = {
    self_grant: "an API cannot be allowed to access its own data",
    not_in_tenant: "every API in the list must be an API of " + tenant,
    allow_all_with_list: "\"Allow all APIs\" cannot be combined with a list",
    malformed_identifier: "an API name in the list is not a valid name",
    repeated: "an API is in the list more than once",
    unknown_target: "this API is not an API of " + tenant,
  };

  function token() {
    const pair = document.cookie
      .split(";")
      .map((part) => part.trim().split("="))
      .find(([name]) => name === "portal_token");
    return pair ? pair[1] : "";
  }

  function say(text, kind) {
    message.textContent = text;
    message.className = "message " + kind;
  }

  function countSelected() {
    if (!selected) {
      return;
    }
    const ticked = boxes().filter((box) => box.checked).length;
    selected.textContent = allowAll.checked
      ? "All APIs are allowed."
      : ticked + (ticked === 1 ? " API selected." : " APIs selected.");
  }

  // The switch clears the list and disables it, as the rule says: allow-all is never
  // combined with a list.
  function applySwitch() {
    for (const box of boxes()) {
      if (allowAll.checked) {
        box.checked = false;
      }
      box.disabled = allowAll.checked || !editable;
    }
    countSelected();
  }

  function filter() {
    const query = search.value.trim().toLowerCase();
    let shown = 0;
    for (const item of items()) {
      const match = item.textContent.toLowerCase().includes(query);
      item.hidden = !match;
      shown += match ? 1 : 0;
    }
    count.textContent = "Showing " + shown + " of " + items().length + " APIs.";
  }

  function show(policy) {
    state.textContent = policy.summary;
    revision.textContent = String(policy.revision);
    form.dataset.revision = String(policy.revision);
  }

  function failure(status, problem) {
    const kept = " Your selection is kept.";
    if (status === 422) {
      const rule = rules[problem.rule] || problem.detail || "a rule of cross-API access";
      return "Not saved: " + rule + "." + kept;
    }
    if (status === 412) {
      return "Not saved: someone else changed this setting after you opened the page." + kept;
    }
    if (status === 403) {
      return "Not saved: you are not allowed to change this setting. Only administrators of " +
        tenant + " and platform staff can." + kept;
    }
    if (status === 404) {
      return "Not saved: this API no longer exists in " + tenant + ".";
    }
    const detail = problem.detail ? " " + problem.detail : "";
    return "Not saved (" + status + ")." + detail + kept;
  }

  async function send(body) {
    const path = "/admin/" + tenant + "/apis/" + api + "/cross-api-access";
    const response = await fetch(path, {
      method: "PUT",
      headers: {
        "Authorization": "Bearer " + token(),
        "Content-Type": "application/json",
        "If-Match": "\"" + form.dataset.revision + "\"",
      },
      body: JSON.stringify(body),
    });
    const answer = await response.json().catch(() => ({}));
    return { status: response.status, answer: answer };
  }

  // After a 412, what is saved now: shown, and the next Save is based on it.
  async function current() {
    const path = "/admin/" + tenant + "/apis/" + api + "/cross-api-access";
    const response = await fetch(path, { headers: { "Authorization": "Bearer " + token() } });
    return response.ok ? response.json() : null;
  }

  async function submit(event) {
    event.preventDefault();
    const body = {
      allow_all: allowAll.checked,
      allow: allowAll.checked ? [] : boxes().filter((box) => box.checked).map((box) => box.value),
    };

    save.disabled = true;
    say("Saving…", "pending");
    try {
      const { status, answer } = await send(body);
      if (status === 200) {
        show(answer);
        for (const box of boxes()) {
          box.checked = answer.allow.includes(box.value);
        }
        applySwitch();
        say("Saved. " + answer.summary, "ok");
        return;
      }
      let text = failure(status, answer);
      if (status === 412) {
        const now = await current();
        if (now) {
          show(now);
          text += " It now reads: \u201c" + now.summary + "\u201d Save again to replace it " +
            "with your selection.";
        }
      }
      say(text, "error");
    } catch (error) {
      say("Not saved: the gateway did not answer. Your selection is kept; try again.", "error");
    } finally {
      save.disabled = false;
    }
  }

  allowAll.addEventListener("change", applySwitch);
  form.addEventListener("change", countSelected);
  if (search) {
    search.addEventListener("input", filter);
    search.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
      }
    });
  }
  if (editable) {
    form.addEventListener("submit", submit);
  } else {
    form.addEventListener("submit", (event) => event.preventDefault());
  }
  countSelected();
})();
