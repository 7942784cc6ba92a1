//! The logs of a real-process run, digested: ERROR lines shown, WARN lines counted by
//! message.

use std::path::{Path, PathBuf};

/// The `*.log` files in `dir` and its direct subdirectories.
fn logs(dir: &Path) -> Vec<PathBuf> {
    let entries = |d: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(d)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect()
    };
    let mut files = Vec::new();
    for p in entries(dir) {
        if p.is_dir() {
            files.extend(entries(&p));
        } else {
            files.push(p);
        }
    }
    files.retain(|p| p.extension().is_some_and(|e| e == "log"));
    files.sort();
    files
}

/// ERROR and WARN lines of every log under `dir`: prints the ERRORs (at most 20) and the
/// distinct WARN messages with counts; returns (errors, warnings).
pub fn scan(dir: &Path) -> (usize, usize) {
    scan_with(dir, |l| println!("{l}"))
}

/// [`scan`], each line of the digest given to `say` instead of printed on stdout.
pub fn scan_with(dir: &Path, say: impl Fn(&str)) -> (usize, usize) {
    let files = logs(dir);
    let mut errors = Vec::new();
    let mut warns: Vec<(String, usize)> = Vec::new();
    for f in &files {
        let name = f
            .strip_prefix(dir)
            .unwrap_or(f)
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for line in text.lines() {
            if line.contains(" ERROR ") {
                errors.push(format!("{name}: {line}"));
            } else if let Some(at) = line.find(" WARN ") {
                // Group by message: drop the timestamp, keep the rest.
                let kind = name.split(['-', '.']).next().unwrap_or("");
                let msg = format!("{kind}: {}", &line[at + 1..]);
                let msg: String = msg.chars().take(200).collect();
                match warns.iter_mut().find(|(m, _)| *m == msg) {
                    Some((_, n)) => *n += 1,
                    None => warns.push((msg, 1)),
                }
            }
        }
    }
    let nwarn = warns.iter().map(|(_, n)| n).sum();
    say(&format!(
        "logs ({}): {} ERROR lines, {nwarn} WARN lines",
        dir.display(),
        errors.len()
    ));
    for e in errors.iter().take(20) {
        say(&format!("  {e}"));
    }
    warns.sort_by_key(|w| std::cmp::Reverse(w.1));
    for (m, n) in warns.iter().take(12) {
        say(&format!("  {n:>4} x {m}"));
    }
    (errors.len(), nwarn)
}
