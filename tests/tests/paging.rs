//! Paging and filters against a real master (issue 15, README "The CLI" and "HTTP JSON
//! API"): `GET /json?state=..&offset=..&limit=..&executors=0`, a refused parameter, and
//! `hearth app list --state .. --limit ..` / `hearth status` over a filtered `GetState`.
//! Three cluster-mode apps with no worker (they wait), the second one killed.

use hearth_tests::harness::*;
use serde_json::Value;

fn get(master: &MasterProc, query: &str) -> (u16, Value) {
    let (code, body) = http_get(&format!("{}/json{query}", master.ui)).expect("GET /json");
    let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    (code, v)
}

fn ids(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|a| a["id"].as_str().expect("an id"))
        .collect()
}

fn app_row(id: &str, name: &str, state: &str, driver: &str) -> String {
    format!(
        "{id:<26} {name:<20} {state:<9} {:>5} {:>9}  {driver}\n",
        0, 0
    )
}

#[test]
fn json_and_the_cli_page_and_filter_on_the_master() {
    let dir = TestDir::new("paging");
    let master = MasterProc::start(dir.path(), &[]);
    let submitted: Vec<Vec<String>> = (0..3)
        .map(|i| {
            let name = format!("p-{i}");
            let args = ["--deploy-mode", "cluster", "--name", &name];
            submit(
                &master.url,
                &[&args[..], &["--executor-command", "true", "--", "true"]].concat(),
            )
        })
        .collect();
    let (apps, drivers): (Vec<&str>, Vec<&str>) = submitted
        .iter()
        .map(|v| (v[0].as_str(), v[1].as_str()))
        .unzip();
    let kill = hearth(&master.url, &["app", "kill", apps[1]]);
    assert!(kill.status.success(), "{}", stderr(&kill));

    // No parameter: the document as always, without any total.
    let (code, all) = get(&master, "");
    assert_eq!(code, 200);
    assert_eq!(ids(&all["activeapps"]), [apps[0], apps[2]]);
    assert_eq!(ids(&all["completedapps"]), [apps[1]]);
    assert_eq!(all["activeapps"][0]["executors"], serde_json::json!([]));
    for key in ["workerstotal", "appstotal", "driverstotal"] {
        assert_eq!(all.get(key), None, "{all}");
    }

    // Apps page as active then completed; each list has its total.
    let (_, first) = get(&master, "?limit=2");
    assert_eq!(ids(&first["activeapps"]), [apps[0], apps[2]]);
    assert_eq!(ids(&first["completedapps"]), Vec::<&str>::new());
    assert_eq!(ids(&first["activedrivers"]), [drivers[0], drivers[2]]);
    assert_eq!(
        (
            &first["appstotal"],
            &first["driverstotal"],
            &first["workerstotal"]
        ),
        (&3.into(), &3.into(), &0.into())
    );
    let (_, second) = get(&master, "?limit=2&offset=2");
    assert_eq!(ids(&second["activeapps"]), Vec::<&str>::new());
    assert_eq!(ids(&second["completedapps"]), [apps[1]]);
    assert_eq!(ids(&second["completeddrivers"]), [drivers[1]]);
    let (_, past) = get(&master, "?offset=3");
    assert_eq!(
        (
            ids(&past["activeapps"]),
            ids(&past["completedapps"]),
            &past["appstotal"]
        ),
        (vec![], vec![], &3.into())
    );

    // A state filter, any case, in every list.
    let (_, waiting) = get(&master, "?state=waiting&offset=1&limit=1");
    assert_eq!(ids(&waiting["activeapps"]), [apps[2]]);
    assert_eq!(
        (&waiting["appstotal"], &waiting["driverstotal"]),
        (&2.into(), &0.into())
    );
    let (_, killed) = get(&master, "?state=KILLED");
    assert_eq!(ids(&killed["completedapps"]), [apps[1]]);
    assert_eq!(ids(&killed["completeddrivers"]), [drivers[1]]);
    assert_eq!(ids(&killed["activeapps"]), Vec::<&str>::new());

    // Without executors: their number; no total (nothing is paged).
    let (_, summary) = get(&master, "?executors=0");
    let app = &summary["activeapps"][0];
    assert_eq!(
        (app.get("executors"), &app["executorcount"]),
        (None, &0.into())
    );
    assert_eq!(summary.get("appstotal"), None);

    // Refused parameters say what is allowed.
    let help = hearth_core::listing::STATUS_QUERY_HELP;
    let (code, bad) = get(&master, "?limit=ten");
    assert_eq!(code, 400);
    assert_eq!(
        bad,
        serde_json::json!({
            "code": "INVALID",
            "error": format!("limit must be a whole number, not \"ten\"; {help}"),
        })
    );
    let (code, bad) = get(&master, "?state=SLEEPING");
    assert_eq!(code, 400);
    let error = bad["error"].as_str().expect("an error");
    assert!(
        error.starts_with("unknown state \"SLEEPING\"; states are: workers ALIVE"),
        "{bad}"
    );

    // The CLI: filtered and paged on the master (GetState), the table as always, the
    // page said on stderr.
    let header = format!(
        "{:<26} {:<20} {:<9} {:>5} {:>9}  DRIVER\n",
        "APP", "NAME", "STATE", "CORES", "EXECUTORS"
    );
    let out = hearth(&master.url, &["app", "list", "--state", "KILLED"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        header.clone() + &app_row(apps[1], "p-1", "KILLED", drivers[1])
    );
    assert_eq!(stderr(&out), "1 of 1 apps shown\n");
    let out = hearth(
        &master.url,
        &["app", "list", "--state", "running,waiting", "--limit", "1"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        header.clone() + &app_row(apps[0], "p-0", "WAITING", drivers[0])
    );
    assert_eq!(
        stderr(&out),
        "1 of 2 apps shown; the next page: --offset 1\n"
    );
    let out = hearth(&master.url, &["app", "list"]);
    assert_eq!(
        stdout(&out),
        header
            + &app_row(apps[0], "p-0", "WAITING", drivers[0])
            + &app_row(apps[2], "p-2", "WAITING", drivers[2])
            + &app_row(apps[1], "p-1", "KILLED", drivers[1])
    );
    assert_eq!(stderr(&out), "", "no paging flag, no note");
    let out = hearth(&master.url, &["app", "list", "--state", "ALIVE"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a worker state is bad usage for apps"
    );
    assert!(
        stderr(&out).contains(
            "unknown state \"ALIVE\"; states are: apps WAITING, RUNNING, FINISHED, FAILED, \
             KILLED, UNKNOWN"
        ),
        "{}",
        stderr(&out)
    );

    // `hearth status`: the counts, then the first rows and how to see the rest.
    let out = hearth(&master.url, &["status", "--limit", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[2],
        "workers 0  apps 3  drivers 3  alive workers 0  cores used 0/0  memory used 0/0 MiB",
        "{text}"
    );
    assert!(
        text.contains("... 2 more apps: hearth status --offset 1 (or --limit N, --all)\n")
            && text
                .contains("... 2 more drivers: hearth status --offset 1 (or --limit N, --all)\n")
            && !text.contains("more workers"),
        "{text}"
    );
    let out = hearth(&master.url, &["status", "--json", "--limit", "1"]);
    let j: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(ids(&j["activeapps"]), [apps[0]]);
    assert_eq!(j["appstotal"], 3);
    master.assert_no_errors();
}
