//! The web UI in a real browser: Debian's headless `chromium` driven over WebDriver
//! (`chromedriver`, the `chromium-driver` package) with fantoccini. On `hearth local`
//! (three Raft masters, a worker, a cluster secret) it opens a follower's UI, follows
//! its link to the leader, logs in with the secret, submits an app through the form
//! whose driver and executor print a known line and sleep, opens the executor's and
//! the driver's stdout through their links and sees the lines, saves a screenshot of
//! the overview (`$CARGO_TARGET_DIR/../hearth-artifacts/ui-overview.png`), kills the app
//! through its page and sees it KILLED.
//!
//! Without `chromedriver` the test fails, saying what to install: it never skips.

use fantoccini::{Client, ClientBuilder, Locator};
use hearth_tests::harness::{one_at_a_time, TestDir};
use hearth_tests::spark::Local;
use hearth_tests::wait::Wait;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(60);
const DRIVER_LINE: &str = "hearth-ui-driver-says-hello";
const EXECUTOR_LINE: &str = "hearth-ui-executor-says-hello";

/// `chromedriver` on a free loopback port, stopped on drop.
struct ChromeDriver {
    child: Child,
    url: String,
}

impl ChromeDriver {
    fn start(dir: &Path) -> ChromeDriver {
        let exe = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .unwrap_or_else(|| {
                panic!(
                    "chromedriver is not installed: install Debian's chromium and chromium-driver \
                     (`apt-get install chromium chromium-driver`; .ci/run does it when missing)"
                )
            });
        let port = hearth_tests::cluster::free_ports(1)[0];
        let log = std::fs::File::create(dir.join("chromedriver.log")).expect("log file");
        let child = Command::new(exe)
            .arg(format!("--port={port}"))
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        Wait::new("chromedriver listening", LONG)
            .until(|| std::net::TcpStream::connect(("127.0.0.1", port)).ok())
            .unwrap_or_else(|e| panic!("{e}"));
        ChromeDriver { child, url }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless chromium session (root in CI: no sandbox).
async fn browser(driver: &ChromeDriver) -> Client {
    let caps = serde_json::json!({
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,1400"],
        }
    });
    let caps = caps.as_object().expect("object").clone();
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a chromium session (is the chromium package installed?)")
}

/// The text of the page's body now, or "" if it cannot be read.
async fn body_text(c: &Client) -> String {
    match c.find(Locator::Css("body")).await {
        Ok(b) => b.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits until the text of the element `css` contains `what` (the page refreshes itself;
/// `reload` loads it again each time instead).
async fn wait_text(c: &Client, css: &str, what: &str, reload: bool) -> String {
    let url = c.current_url().await.expect("url").to_string();
    let found = Wait::new(format!("{what:?} in {css} of {url}"), LONG)
        .every(Duration::from_millis(250))
        .until_async(|| async {
            if reload {
                c.goto(&url).await.ok()?;
            }
            let text = c.find(Locator::Css(css)).await.ok()?.text().await.ok()?;
            text.contains(what).then_some(text)
        })
        .await;
    match found {
        Ok(text) => text,
        Err(e) => panic!("{e}; the page says:\n{}", body_text(c).await),
    }
}

async fn click(c: &Client, css: &str) {
    let e = c.find(Locator::Css(css)).await;
    match e {
        Ok(e) => e.click().await.expect("click"),
        Err(err) => panic!("no {css} ({err}); the page says:\n{}", body_text(c).await),
    }
}

async fn fill(c: &Client, name: &str, value: &str) {
    let e = (c.find(Locator::Css(&format!("[name={name}]"))).await)
        .unwrap_or_else(|e| panic!("no field {name}: {e}"));
    e.clear().await.expect("clear");
    e.send_keys(value).await.expect("type");
}

/// Where CI keeps what a run leaves for people: `$CARGO_TARGET_DIR/../hearth-artifacts`
/// (the target dir: `CARGO_TARGET_DIR`, else the one this test binary was built in).
fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let exe = std::env::current_exe().expect("test binary");
            // target/debug/deps/browser-...
            exe.ancestors().nth(3).expect("target dir").to_path_buf()
        });
    let dir = target.join("..").join("hearth-artifacts");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

#[test]
fn a_follower_leads_to_the_leader_where_a_page_submits_shows_logs_and_kills() {
    let _one = one_at_a_time();
    let started = Instant::now();
    let dir = TestDir::new("browser");
    let driver = ChromeDriver::start(dir.path());
    let local = Local::start(dir.path(), 1, &[]);
    let secret = std::fs::read_to_string(&local.secret).expect("secret");
    let leader = Wait::new("a leader", LONG)
        .until(|| local.leader())
        .unwrap_or_else(|e| panic!("{e}"));
    let follower = (local.addrs.iter())
        .find(|a| **a != leader)
        .expect("a follower")
        .clone();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let c = browser(&driver).await;

        eprintln!("--- the follower's UI links to the leader");
        c.goto(&format!("http://{follower}/")).await.expect("goto");
        wait_text(&c, "#role", "STANDBY", true).await;
        click(&c, "#leader-link").await;
        wait_text(&c, "#role", "leads", false).await;
        let at = c.current_url().await.expect("url");
        assert_eq!(at.as_str(), format!("http://{leader}/"));

        eprintln!("--- log in with the secret");
        click(&c, "a[href^='/ui/login']").await;
        fill(&c, "secret", secret.trim()).await;
        click(&c, "#login-button").await;
        wait_text(&c, "nav", "logged in with the cluster secret", false).await;

        eprintln!("--- submit through the form");
        fill(&c, "name", "from-the-browser").await;
        fill(&c, "command", "sh").await;
        let args = format!("-c\necho {DRIVER_LINE}; exec sleep 600");
        fill(&c, "args", &args).await;
        fill(&c, "cores", "1").await;
        fill(&c, "memory_mb", "64").await;
        fill(&c, "executors", "1").await;
        let executor = format!("echo {EXECUTOR_LINE}; exec sleep 600");
        fill(&c, "executor_command", &executor).await;
        click(&c, "#submit-button").await;
        wait_text(&c, "h1", "app app-", false).await;
        let app_page = c.current_url().await.expect("url").to_string();
        let app = app_page.rsplit('/').next().expect("app id").to_owned();
        eprintln!("submitted {app}");
        // The page refreshes itself until the executor runs.
        wait_text(&c, "#executors", "RUNNING", false).await;

        eprintln!("--- the executor's and the driver's stdout through their links");
        click(&c, "#executors a.stdout").await;
        wait_text(&c, "body", EXECUTOR_LINE, true).await;
        c.goto(&app_page).await.expect("back");
        click(&c, "#app a[href^='/ui/drivers/']").await;
        wait_text(&c, "#driver-state", "RUNNING", true).await;
        click(&c, "#driver a.stdout").await;
        wait_text(&c, "body", DRIVER_LINE, true).await;

        eprintln!("--- a screenshot of the overview");
        c.goto(&format!("http://{leader}/"))
            .await
            .expect("overview");
        wait_text(&c, "main", "from-the-browser", false).await;
        let png = c.screenshot().await.expect("screenshot");
        let path = artifacts().join("ui-overview.png");
        std::fs::write(&path, &png).expect("save the screenshot");
        println!("screenshot of the overview: {}", path.display());

        eprintln!("--- kill through the app's page");
        c.goto(&app_page).await.expect("the app's page");
        click(&c, "#kill-button").await;
        wait_text(&c, "#app-state", "KILLED", true).await;
        c.close().await.expect("close the browser");
    });
    let shown = local
        .app(&app_id_of(&local))
        .expect("the app on the leader");
    assert_eq!(shown["state"], "KILLED", "{shown}");
    eprintln!("browser test took {:?}", started.elapsed());
}

/// The app the browser submitted, by its name.
fn app_id_of(local: &Local) -> String {
    Wait::new("the browser's app listed", LONG)
        .until(|| local.app_named("from-the-browser"))
        .unwrap_or_else(|e| panic!("{e}"))
}
