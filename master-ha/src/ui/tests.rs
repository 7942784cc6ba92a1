//! The UI's pages rendered from a real state (commands applied by `hearth_core::apply`):
//! users' text comes back escaped, a standby links to the leader and shows no forms,
//! forms carry the session's CSRF token, an executor's row links to its logs.

use super::pages::{app_page, overview_page, Offsets, UI_ROWS};
use super::{Frame, Viewer};
use crate::master::status_of;
use hearth_core::{
    apply, AppDescription, ClusterState, Command, DriverDescription, MasterRole, Millis,
    ProcessSpec, WorkerIdentity, WorkerRegistration,
};
use hearth_proto::auth::{Access, Caller, Secret};
use hearth_proto::convert::StatusView;

const EVIL: &str = "<script>alert(1)</script>";

/// A state with a worker and a cluster-mode app named [`EVIL`], as `role` shows it.
fn view(role: MasterRole, leader: Option<&str>) -> StatusView {
    let mut s = ClusterState::default();
    let spec = |argv: &[&str]| ProcessSpec {
        argv: argv.iter().map(|a| a.to_string()).collect(),
        env: Default::default(),
    };
    let cmds = [
        Command::RegisterWorker {
            reg: WorkerRegistration {
                identity: WorkerIdentity {
                    id: "worker-1".into(),
                    host: "127.0.0.1".into(),
                    port: 1,
                    http_port: 0,
                    cores: 4,
                    memory_mb: 4096,
                },
                executors: Vec::new(),
                drivers: Vec::new(),
            },
            at: Millis(1),
        },
        Command::RegisterApp {
            desc: AppDescription {
                name: EVIL.into(),
                cores_per_executor: Some(1),
                memory_per_executor_mb: 64,
                max_cores: Some(1),
                initial_executor_limit: None,
                command: spec(&["sh", "-c", "echo \"<b>\""]),
            },
            driver: Some(DriverDescription {
                cores: 1,
                memory_mb: 64,
                supervise: false,
                command: spec(&["sleep", "1"]),
            }),
            driver_url: None,
            at: Millis(2),
        },
    ];
    for c in &cmds {
        apply(&mut s, c).expect("applies");
    }
    let mut v = status_of(&s, None);
    v.status = role;
    v.leader = leader.map(str::to_owned);
    v
}

fn logged_in() -> Viewer {
    let access = Access::from(Secret::parse(&"s".repeat(40)).expect("secret"));
    let cookie = access
        .open_session(&Caller { token: None }, 1)
        .expect("session");
    Viewer {
        auth: true,
        session: access.session(&cookie, 2),
    }
}

#[test]
fn users_text_is_escaped() {
    let v = view(MasterRole::Alive, Some("127.0.0.1:7077"));
    let viewer = logged_in();
    let f = Frame {
        view: &v,
        this: "127.0.0.1:7077",
        viewer: &viewer,
        here: "/",
    };
    let page = overview_page(&f, None, &Offsets::default()).into_string();
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    assert!(!page.contains(EVIL), "{page}");
    let app = v.active_apps[0].id.to_string();
    let page = app_page(&f, &app).expect("the app's page").into_string();
    assert!(!page.contains(EVIL) && !page.contains("\"<b>\""), "{page}");
    assert!(page.contains("echo &quot;&lt;b&gt;&quot;"), "{page}");
}

#[test]
fn a_standby_links_to_the_leader_and_shows_no_forms() {
    let v = view(MasterRole::Standby, Some("10.0.0.2:7077"));
    let viewer = logged_in();
    let app = v.active_apps[0].id.to_string();
    let here = format!("/ui/apps/{app}");
    let f = Frame {
        view: &v,
        this: "10.0.0.1:7077",
        viewer: &viewer,
        here: &here,
    };
    let page = app_page(&f, &app).expect("the app's page").into_string();
    assert!(page.contains("STANDBY"), "{page}");
    assert!(
        page.contains(&format!(
            "id=\"leader-link\" href=\"//10.0.0.2:7077/ui/apps/{app}\""
        )),
        "{page}"
    );
    assert!(
        !page.contains("/kill\""),
        "no kill form on a standby: {page}"
    );
    let overview =
        overview_page(&Frame { here: "/", ..f }, None, &Offsets::default()).into_string();
    assert!(!overview.contains("action=\"/ui/submit\""), "{overview}");
}

#[test]
fn the_leaders_forms_carry_the_sessions_csrf_token() {
    let v = view(MasterRole::Alive, Some("127.0.0.1:7077"));
    let viewer = logged_in();
    let csrf = viewer.session.as_ref().expect("session").csrf().to_owned();
    let f = Frame {
        view: &v,
        this: "127.0.0.1:7077",
        viewer: &viewer,
        here: "/",
    };
    let page = overview_page(&f, None, &Offsets::default()).into_string();
    assert!(page.contains("action=\"/ui/submit\""), "{page}");
    assert!(
        page.contains(&format!("name=\"csrf\" value=\"{csrf}\"")),
        "{page}"
    );
    let driver = v.active_drivers[0].id.to_string();
    assert!(page.contains(&format!("href=\"/ui/drivers/{driver}\"")));
    // Logged out: no form, a link to log in.
    let anonymous = Viewer {
        auth: true,
        session: None,
    };
    let page = overview_page(
        &Frame {
            viewer: &anonymous,
            ..f
        },
        None,
        &Offsets::default(),
    )
    .into_string();
    assert!(!page.contains("action=\"/ui/submit\"") && page.contains("/ui/login?next=/"));
}

#[test]
fn the_overview_shows_a_page_of_each_list_with_links_to_the_others() {
    let mut s = ClusterState::default();
    for i in 0..250u16 {
        let reg = WorkerRegistration {
            identity: WorkerIdentity {
                id: format!("w-{i:03}").into(),
                host: "10.0.0.1".into(),
                port: 1000 + i,
                http_port: 0,
                cores: 4,
                memory_mb: 4096,
            },
            executors: Vec::new(),
            drivers: Vec::new(),
        };
        apply(&mut s, &Command::RegisterWorker { reg, at: Millis(1) }).expect("applies");
    }
    let v = status_of(&s, None);
    let viewer = logged_in();
    let page = |query: &[(&str, &str)]| {
        let q: Vec<(String, String)> = (query.iter())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let f = Frame {
            view: &v,
            this: "127.0.0.1:7077",
            viewer: &viewer,
            here: "/",
        };
        overview_page(&f, None, &Offsets::parse(&q)).into_string()
    };
    let rows = |p: &str| p.matches("href=\"/ui/workers/w-").count();
    let first = page(&[]);
    assert_eq!(rows(&first), UI_ROWS, "{first}");
    assert!(first.contains("Workers (250)") && first.contains("rows 1–100 of 250"));
    assert!(first.contains("href=\"/ui/workers/w-000\"") && !first.contains("w-100\""));
    assert!(first.contains("href=\"/?workers=100\">next 100"), "{first}");
    assert!(first.contains("href=\"/?workers=200\">last"), "{first}");
    // The last page: 50 rows; a parameter past the end shows it too; unknown ones and
    // bad numbers are ignored.
    for q in [
        &[("workers", "200")][..],
        &[("workers", "9999"), ("_", "1")],
    ] {
        let last = page(q);
        assert_eq!(rows(&last), 50, "{last}");
        assert!(last.contains("w-249\"") && last.contains("rows 201–250 of 250"));
        assert!(
            last.contains("href=\"/?workers=100\">previous 100"),
            "{last}"
        );
        assert!(last.contains("href=\"/\">first") && !last.contains("next 100"));
    }
    assert_eq!(rows(&page(&[("workers", "x")])), UI_ROWS);
    // Another list's place is kept in the links.
    let mid = page(&[("workers", "100"), ("apps", "100")]);
    assert!(
        mid.contains("href=\"/?workers=200&amp;apps=100\">next 100"),
        "{mid}"
    );
}
