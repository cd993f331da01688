//! What the `jukebox` command's tests share: reading the environment `jukebox up` prints.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::Child;

/// Reads `jukebox up`'s `export NAME=value` lines from its standard output until `count` variables
/// have arrived (they come once the servers listen: seven, and one per token).
pub fn read_exports(child: &mut Child, count: usize) -> BTreeMap<String, String> {
    let mut lines = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
    let mut env = BTreeMap::new();
    while env.len() < count {
        let line = lines.next().expect("`jukebox up` closed its output early").unwrap();
        let (name, value) = line
            .strip_prefix("export ")
            .and_then(|l| l.split_once('='))
            .unwrap_or_else(|| panic!("not an export line: {line}"));
        env.insert(name.to_string(), value.to_string());
    }
    env
}
