//! Headless Chromium (Debian's) driven over the DevTools protocol through a pipe
//! (`--remote-debugging-pipe`: commands on its fd 3, answers and events on its fd 4, each a
//! JSON text ended by a NUL byte), so a test can open a page, evaluate script in it, wait for
//! what the page shows and read the page's network log. The pipe's two ends are FIFOs the
//! shell hands to Chromium as fds 3 and 4 (no WebSocket client, no unsafe code).

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// One Chromium process with one page, killed when dropped.
pub struct Browser {
    child: Child,
    commands: File,
    answers: Receiver<Value>,
    next_id: u64,
    session: String,
    events: Vec<Value>,
    dir: PathBuf,
}

/// Chromium's flags for a quiet headless run in a test (no sandbox: tests run as root).
pub const HEADLESS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// How long one command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(90);

impl Browser {
    /// Starts Chromium and opens a blank page with the network log on.
    pub fn start() -> Browser {
        let dir = std::env::temp_dir().join(crate::unique("chromium"));
        std::fs::create_dir_all(&dir).expect("profile dir");
        let (to_browser, from_browser) = (dir.join("in"), dir.join("out"));
        for fifo in [&to_browser, &from_browser] {
            let made = Command::new("mkfifo").arg(fifo).status().expect("mkfifo");
            assert!(made.success(), "mkfifo {}", fifo.display());
        }
        let child = Command::new("sh")
            .arg("-c")
            .arg(r#"exec chromium "$@" --user-data-dir="$PROFILE" 3<"$IN" 4>"$OUT" 2>"$LOG""#)
            .arg("chromium")
            .args(HEADLESS)
            .arg("--remote-debugging-pipe")
            .env("PROFILE", dir.join("profile"))
            .env("IN", &to_browser)
            .env("OUT", &from_browser)
            .env("LOG", dir.join("chromium.log"))
            .spawn()
            .expect("Debian's chromium (scripts/test installs it)");
        // The shell opens fd 3 first, then fd 4: open the FIFOs in that order.
        let commands = File::create(&to_browser).expect("the command pipe");
        let answers_pipe = File::open(&from_browser).expect("the answer pipe");
        let (tx, answers) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(answers_pipe);
            let mut message = Vec::new();
            while reader.read_until(0, &mut message).is_ok_and(|n| n > 0) {
                message.pop_if(|b| *b == 0);
                if let Ok(value) = serde_json::from_slice::<Value>(&message)
                    && tx.send(value).is_err()
                {
                    break;
                }
                message.clear();
            }
        });
        let mut browser = Browser {
            child,
            commands,
            answers,
            next_id: 0,
            session: String::new(),
            events: Vec::new(),
            dir,
        };
        let target = browser.browser_call("Target.createTarget", json!({"url": "about:blank"}));
        let target = target["targetId"].as_str().expect("a target id").to_owned();
        let attached = browser.browser_call(
            "Target.attachToTarget",
            json!({"targetId": target, "flatten": true}),
        );
        browser.session = attached["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        browser.call("Network.enable", json!({}));
        browser.call("Page.enable", json!({}));
        browser
    }

    fn send(&mut self, method: &str, params: Value, session: Option<&str>) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            message["sessionId"] = s.into();
        }
        let mut bytes = message.to_string().into_bytes();
        bytes.push(0);
        self.commands
            .write_all(&bytes)
            .and_then(|()| self.commands.flush())
            .unwrap_or_else(|e| panic!("Chromium's pipe: {e}; {}", self.log()));
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.answers.recv_timeout(left) {
                Ok(answer) if answer["id"] == id => {
                    assert!(
                        answer.get("error").is_none(),
                        "{method}: {}",
                        answer["error"]
                    );
                    return answer["result"].clone();
                }
                Ok(event) => self.events.push(event),
                Err(RecvTimeoutError::Timeout) => {
                    panic!("{method}: no answer in {COMMAND_TIMEOUT:?}; {}", self.log())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("{method}: Chromium went away; {}", self.log())
                }
            }
        }
    }

    fn browser_call(&mut self, method: &str, params: Value) -> Value {
        self.send(method, params, None)
    }

    /// Sends a command to the page and returns its result.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.send(method, params, Some(&session))
    }

    /// Opens `url` and waits until its `load` event.
    pub fn open(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let loaded = |e: &Value| e["method"] == "Page.loadEventFired";
        while !self.events.iter().any(loaded) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.answers.recv_timeout(left) {
                Ok(event) => self.events.push(event),
                Err(_) => panic!("{url} did not load; {}", self.log()),
            }
        }
    }

    /// Evaluates `expression` in the page, awaiting it when it is a promise; its value.
    pub fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "awaitPromise": true, "returnByValue": true}),
        );
        assert!(
            result.get("exceptionDetails").is_none(),
            "{expression}: {}",
            result["exceptionDetails"]
        );
        result["result"]["value"].clone()
    }

    /// Waits until an element matching `selector` is in the page (a `MutationObserver`, no
    /// polling) and returns its outer HTML.
    pub fn wait_for(&mut self, selector: &str) -> String {
        let selector = serde_json::to_string(selector).expect("a string");
        let script = format!(
            "new Promise((resolve) => {{
               const found = () => document.querySelector({selector});
               if (found()) return resolve(found().outerHTML);
               new MutationObserver((_, o) => {{
                 if (found()) {{ o.disconnect(); resolve(found().outerHTML); }}
               }}).observe(document.documentElement, {{ childList: true, subtree: true }});
             }})"
        );
        self.eval(&script).as_str().expect("outer HTML").to_owned()
    }

    /// The URLs the page requested so far, in order (the network log).
    pub fn requests(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e["method"] == "Network.requestWillBeSent")
            .filter_map(|e| e["params"]["request"]["url"].as_str().map(str::to_owned))
            .collect()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("chromium.log"))
            .map(|l| format!("chromium's log:\n{l}"))
            .unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
