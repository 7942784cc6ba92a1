//! `--config FILE` (or `HEARTH_CONFIG`): a TOML file whose keys are the long flag names.
//!
//! The rule (README "Configuration file"):
//! - Keys at the top level apply to every command that has a flag of that name (the
//!   others ignore them); a key in `[master]`, `[worker]`, `[submit]`, ... applies to that
//!   command only, and a nested table (`[cluster.transfer]`) to that subcommand. A deeper
//!   table wins over a shallower one.
//! - Precedence: a flag on the command line > its environment variable (`HEARTH_*`) > the
//!   file > the flag's default.
//! - A key must be a flag of its table's command (or of a command below it), and a table
//!   must name a subcommand: anything else is an error naming the key and the file, with
//!   the closest valid name. A value is checked by the command that uses it (clap's
//!   message, naming the flag, plus where the value came from).
//! - `true` gives a switch (`insecure-no-auth = true` is `--insecure-no-auth`), `false`
//!   leaves it out; a list gives a repeatable flag once per element.
//! - `master` cannot be both the global `--master` key and the `[master]` section of one
//!   TOML file, so the key `masters` also means `--master` (on commands without a
//!   `--masters` flag of their own). `master` and `masters` are one setting: a file value
//!   for either is dropped when the other is given on the command line or in the
//!   environment.
//!
//! Clap stays the single source of truth: the flags are found by introspecting the
//! command, and the file's values become `--key=value` arguments added to the command
//! line before the real parse, for each flag the command line and the environment leave
//! unset.

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::PathBuf;

/// Long names that are not settings: never keys of a file, never printed.
const NOT_SETTINGS: &[&str] = &["help", "version", "config", "print-config"];

/// The one pair of long names that are one setting (see the module doc).
const MASTER: &str = "master";
const MASTERS: &str = "masters";

/// The command line to parse, and what the file contributed to it.
#[derive(Debug, Default)]
pub struct Plan {
    /// The arguments for the real parse: the given ones plus the file's.
    pub argv: Vec<OsString>,
    /// The config file read, and how it was named (`--config` or `HEARTH_CONFIG`).
    pub file: Option<(PathBuf, &'static str)>,
    /// The settings the file gave, by clap arg id: where each came from.
    pub from_file: BTreeMap<String, Applied>,
}

/// A setting taken from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The key as written.
    pub key: String,
    /// The table it was in: "" for the top level, else e.g. "[master]".
    pub table: String,
    /// The long flag it sets.
    pub long: String,
}

/// Adds the config file's settings (if a file is named) to `argv`, for `cmd` (the whole
/// CLI, unbuilt). An error (bad file, unknown key) is a usage error for the caller to
/// print. A command line clap will refuse anyway is returned unchanged, for the real
/// parse to say what is wrong with it.
pub fn plan(cmd: Command, argv: Vec<OsString>) -> Result<Plan, String> {
    let mut built = cmd.clone();
    built.build();
    // Which flags the command line and the environment set, which subcommand runs and
    // which file is named: clap's own parse, with nothing required (the file may supply
    // what is).
    let pre = match relaxed(cmd).try_get_matches_from(&argv) {
        Ok(m) => m,
        Err(_) => return Ok(plan_without_file(argv)),
    };
    let Some(raw) = pre.get_raw("config").and_then(|mut v| v.next()) else {
        return Ok(plan_without_file(argv));
    };
    let path = PathBuf::from(raw);
    let how = match pre.value_source("config") {
        Some(ValueSource::EnvVariable) => "HEARTH_CONFIG",
        _ => "--config",
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read config file {} ({how}): {e}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| format!("config file {} is not valid TOML: {e}", path.display()))?;
    let file = path.display().to_string();
    validate(&built, &table, "", &file)?;

    // The subcommand that runs, its matches, and the file's tables along the way.
    let mut leaf = &built;
    let mut leaf_matches = &pre;
    let mut tables = vec![(String::new(), &table)];
    while let Some((name, m)) = leaf_matches.subcommand() {
        leaf = leaf
            .find_subcommand(name)
            .ok_or_else(|| format!("no subcommand {name}"))?;
        leaf_matches = m;
        let label = sub_label(tables.last().map_or("", |(l, _)| l.as_str()), name);
        let next = tables
            .last()
            .and_then(|(_, t)| t.get(name))
            .and_then(toml::Value::as_table);
        match next {
            Some(t) => tables.push((label, t)),
            None => tables.push((label, &EMPTY)),
        }
    }

    // Each setting the running command has, from the deepest table that names it.
    let mut chosen: BTreeMap<String, (&Arg, &toml::Value, Applied)> = BTreeMap::new();
    for (label, t) in &tables {
        let mut here: BTreeMap<String, &str> = BTreeMap::new();
        for (key, value) in t.iter() {
            if value.is_table() {
                continue;
            }
            let Some(arg) = resolve(leaf, key) else {
                continue; // a flag of another command below this table
            };
            let id = arg.get_id().to_string();
            if let Some(other) = here.insert(id, key) {
                return Err(format!(
                    "config file {file}{}: keys {other} and {key} both set --{}",
                    in_table(label),
                    arg.get_long().unwrap_or(key)
                ));
            }
            let applied = Applied {
                key: key.clone(),
                table: label.clone(),
                long: arg.get_long().unwrap_or(key).to_owned(),
            };
            chosen.insert(arg.get_id().to_string(), (arg, value, applied));
        }
    }

    let given = |long: &str| -> bool {
        leaf.get_arguments()
            .filter(|a| a.get_long() == Some(long))
            .any(|a| {
                matches!(
                    leaf_matches.value_source(a.get_id().as_str()),
                    Some(ValueSource::CommandLine | ValueSource::EnvVariable)
                )
            })
    };
    let mut extra: Vec<OsString> = Vec::new();
    let mut from_file = BTreeMap::new();
    for (id, (arg, value, applied)) in chosen {
        let long = applied.long.as_str();
        let linked = match long {
            MASTER => Some(MASTERS),
            MASTERS => Some(MASTER),
            _ => None,
        };
        if given(long) || linked.is_some_and(&given) {
            continue;
        }
        extra.extend(
            tokens(arg, value)
                .map_err(|e| format!("config file {file}{}: {e}", in_table(&applied.table)))?,
        );
        from_file.insert(id, applied);
    }

    // Before a `--` (after it everything is the driver command's), else at the end.
    let mut argv = argv;
    let at = argv
        .iter()
        .skip(1)
        .position(|a| a == "--")
        .map_or(argv.len(), |i| i + 1);
    argv.splice(at..at, extra);
    Ok(Plan {
        argv,
        file: Some((path, how)),
        from_file,
    })
}

static EMPTY: std::sync::LazyLock<toml::Table> = std::sync::LazyLock::new(toml::Table::new);

fn plan_without_file(argv: Vec<OsString>) -> Plan {
    Plan {
        argv,
        ..Plan::default()
    }
}

/// `[name]` below the top level, `[a.name]` below `[a]`.
fn sub_label(label: &str, name: &str) -> String {
    match label.strip_suffix(']') {
        Some(outer) => format!("{outer}.{name}]"),
        None => format!("[{name}]"),
    }
}

fn in_table(label: &str) -> String {
    if label.is_empty() {
        String::new()
    } else {
        format!(" (in {label})")
    }
}

/// `cmd` and its subcommands with nothing required.
fn relaxed(cmd: Command) -> Command {
    let groups: Vec<String> = cmd.get_groups().map(|g| g.get_id().to_string()).collect();
    let mut cmd = cmd
        .subcommand_required(false)
        .arg_required_else_help(false)
        .mut_args(|a| a.required(false))
        .mut_subcommands(relaxed);
    for g in groups {
        cmd = cmd.mut_group(g, |g| g.required(false));
    }
    cmd
}

/// The arg of `cmd` a file key sets, if `cmd` has it (`masters` falls back to `--master`).
fn resolve<'a>(cmd: &'a Command, key: &str) -> Option<&'a Arg> {
    if NOT_SETTINGS.contains(&key) {
        return None;
    }
    let by_long = |long: &str| cmd.get_arguments().find(|a| a.get_long() == Some(long));
    by_long(key).or_else(|| (key == MASTERS).then(|| by_long(MASTER)).flatten())
}

/// Every key valid in a table for `cmd`: the long flags of `cmd` and of every command
/// below it.
fn keys_below(cmd: &Command, out: &mut BTreeSet<String>) {
    for a in cmd.get_arguments() {
        if let Some(long) = a.get_long().filter(|l| !NOT_SETTINGS.contains(l)) {
            out.insert(long.to_owned());
            if long == MASTER {
                out.insert(MASTERS.to_owned());
            }
        }
    }
    for sub in cmd.get_subcommands() {
        keys_below(sub, out);
    }
}

/// Checks every key and table of `table`, the table for `cmd` (`label` names it).
fn validate(cmd: &Command, table: &toml::Table, label: &str, file: &str) -> Result<(), String> {
    let mut valid = BTreeSet::new();
    keys_below(cmd, &mut valid);
    let whose = if label.is_empty() {
        "no hearth command has".to_owned()
    } else {
        let path = label
            .trim_matches(|c| c == '[' || c == ']')
            .replace('.', " ");
        format!("hearth {path} has no")
    };
    for (key, value) in table {
        if let Some(sub) = value.as_table() {
            let Some(sc) = cmd.find_subcommand(key) else {
                let names: Vec<&str> = cmd.get_subcommands().map(Command::get_name).collect();
                let whose = if label.is_empty() {
                    "hearth has no command".to_owned()
                } else {
                    format!("{whose} subcommand")
                };
                return Err(format!(
                    "unknown section {} in config file {file}: {whose} {key}{}",
                    sub_label(label, key),
                    suggest(key, names.iter().copied())
                ));
            };
            validate(sc, sub, &sub_label(label, key), file)?;
        } else if NOT_SETTINGS.contains(&key.as_str()) {
            return Err(format!(
                "key {key} in config file {file}{} cannot be set in a config file",
                in_table(label)
            ));
        } else if !valid.contains(key) {
            return Err(format!(
                "unknown key {key} in config file {file}{}: {whose} --{key}{}",
                in_table(label),
                suggest(key, valid.iter().map(String::as_str))
            ));
        }
    }
    Ok(())
}

/// "; did you mean X?" for the closest of `names`, if one is close.
fn suggest<'a>(word: &str, names: impl Iterator<Item = &'a str>) -> String {
    let best = names
        .map(|n| (distance(word, n), n))
        .min_by_key(|(d, _)| *d)
        .filter(|(d, _)| *d <= 2.max(word.len() / 3));
    match best {
        Some((_, n)) => format!("; did you mean {n}?"),
        None => String::new(),
    }
}

/// Levenshtein distance, counting `_` and `-` as equal (`worker_timeout`).
fn distance(a: &str, b: &str) -> usize {
    let norm = |c: char| if c == '_' { '-' } else { c };
    let a: Vec<char> = a.chars().map(norm).collect();
    let b: Vec<char> = b.chars().map(norm).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The command-line arguments for `arg` set to `value` in the file.
fn tokens(arg: &Arg, value: &toml::Value) -> Result<Vec<OsString>, String> {
    let long = arg.get_long().unwrap_or_default();
    let key = format!("key {long}");
    let action = arg.get_action();
    if !action.takes_values() {
        // A switch: true gives it, false leaves it out (Count: an integer repeats it).
        return match value {
            toml::Value::Boolean(true) => Ok(vec![format!("--{long}").into()]),
            toml::Value::Boolean(false) => Ok(Vec::new()),
            toml::Value::Integer(n) if matches!(action, ArgAction::Count) && *n >= 0 => {
                Ok((0..*n).map(|_| format!("--{long}").into()).collect())
            }
            _ => Err(format!(
                "{key}: --{long} is a switch, write {long} = true or false"
            )),
        };
    }
    let scalar = |v: &toml::Value| -> Result<String, String> {
        match v {
            toml::Value::String(s) => Ok(s.clone()),
            toml::Value::Integer(n) => Ok(n.to_string()),
            toml::Value::Float(f) => Ok(f.to_string()),
            toml::Value::Boolean(b) => Ok(b.to_string()),
            toml::Value::Datetime(d) => Ok(d.to_string()),
            toml::Value::Array(_) | toml::Value::Table(_) => {
                Err(format!("{key}: a list may not hold lists or tables"))
            }
        }
    };
    let values = match value {
        toml::Value::Array(items) if matches!(action, ArgAction::Append) => {
            items.iter().map(scalar).collect::<Result<Vec<_>, _>>()?
        }
        toml::Value::Array(_) => {
            return Err(format!("{key}: --{long} takes one value, not a list"));
        }
        v => vec![scalar(v)?],
    };
    Ok(values
        .into_iter()
        .map(|v| format!("--{long}={v}").into())
        .collect())
}

/// When clap refused the real parse because of a value the file gave: which key it was.
pub fn blame(plan: &Plan, e: &clap::Error) -> Option<String> {
    let (path, _) = plan.file.as_ref()?;
    let Some(clap::error::ContextValue::String(arg)) = e.get(clap::error::ContextKind::InvalidArg)
    else {
        return None;
    };
    plan.from_file.values().find_map(|a| {
        let flag = format!("--{}", a.long);
        let named = arg == &flag
            || arg.starts_with(&format!("{flag} "))
            || arg.starts_with(&format!("{flag}="));
        named.then(|| {
            format!(
                "note: --{} was set by key {} in config file {}{}",
                a.long,
                a.key,
                path.display(),
                in_table(&a.table)
            )
        })
    })
}

/// Whether a key's values are hidden by `--print-config` (a secret itself, not a path).
fn secret(arg: &Arg) -> bool {
    let long = arg.get_long().unwrap_or_default();
    long.ends_with("secret") || long.ends_with("token") || arg.is_hide_env_values_set()
}

/// `--print-config`: every setting of the command that `matches` ran (`cmd` is the whole
/// CLI, unbuilt), with its value and where it came from (flag, env, file or default), as
/// TOML a config file may hold. Secrets show `<hidden>`; nothing is read from files.
pub fn render(cmd: Command, matches: &ArgMatches, plan: &Plan) -> String {
    let mut built = cmd;
    built.build();
    let mut leaf = &built;
    let mut m = matches;
    let mut name = vec!["hearth"];
    while let Some((sub, sm)) = m.subcommand() {
        match leaf.find_subcommand(sub) {
            Some(c) => leaf = c,
            None => break,
        }
        name.push(sub);
        m = sm;
    }
    let mut out = format!("# {}: merged settings", name.join(" "));
    match &plan.file {
        Some((path, how)) => out += &format!(" (config file {}, from {how})\n", path.display()),
        None => out += " (no config file)\n",
    }
    let mut lines: Vec<(String, String)> = Vec::new();
    for arg in leaf.get_arguments() {
        let Some(long) = arg.get_long().filter(|l| !NOT_SETTINGS.contains(l)) else {
            continue;
        };
        let id = arg.get_id().as_str();
        let raw: Vec<String> = match m.try_get_raw(id) {
            Ok(Some(v)) => v.map(|s| s.to_string_lossy().into_owned()).collect(),
            _ => Vec::new(),
        };
        let source = match (plan.from_file.get(id), m.value_source(id)) {
            (Some(a), _) => {
                let path = plan.file.as_ref().map(|(p, _)| p.display().to_string());
                format!("file {}{}", path.unwrap_or_default(), in_table(&a.table))
            }
            (None, Some(ValueSource::CommandLine)) => "flag".to_owned(),
            (None, Some(ValueSource::EnvVariable)) => match arg.get_env() {
                Some(env) => format!("env {}", env.to_string_lossy()),
                None => "env".to_owned(),
            },
            (None, Some(ValueSource::DefaultValue)) => "default".to_owned(),
            (None, _) => "unset".to_owned(),
        };
        let value = if raw.is_empty() && !plan.from_file.contains_key(id) {
            lines.push((format!("# {long}"), source));
            continue;
        } else if raw.is_empty() {
            // A switch the file turned off.
            "false".to_owned()
        } else if secret(arg) {
            toml_value("<hidden>", false)
        } else if matches!(arg.get_action(), ArgAction::Append) {
            let items: Vec<String> = raw.iter().map(|v| toml_value(v, true)).collect();
            format!("[{}]", items.join(", "))
        } else {
            toml_value(&raw.join(","), false)
        };
        lines.push((format!("{long} = {value}"), source));
    }
    let width = lines.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    for (line, source) in lines {
        out += &format!("{line:<width$}  # {source}\n");
    }
    out
}

/// `v` as a TOML value: numbers and booleans bare (the file turns them back into the
/// same flag value), anything else a string.
fn toml_value(v: &str, quoted: bool) -> String {
    let bare = v == "true" || v == "false" || (v.parse::<i64>().is_ok() && !v.starts_with('+'));
    if bare && !quoted {
        v.to_owned()
    } else {
        toml::Value::String(v.to_owned()).to_string()
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
