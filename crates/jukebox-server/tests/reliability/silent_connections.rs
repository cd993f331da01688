//! Issue 23 item 3: connections that send nothing. The outside probe held 1,100 silent
//! connections at `ulimit -n 1024` and every service timed out for 40 s. Here each server (its own
//! instance, with a cap of [`CAP`] connections and a [`HEADER_TIMEOUT`] header timeout) gets
//! hundreds of silent connections (2,000 in long mode): its health must answer while they are
//! open, and the server must close every one of them, at once to make room under the cap or
//! after the header timeout. (`tests/timeouts.rs` runs the same at a real `ulimit -n 1024`.)

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::common::{get_request, raw, three_servers};
use crate::Suite;

const HEADER_TIMEOUT: Duration = Duration::from_secs(1);
const CAP: usize = 64;
/// Slowest health answer accepted while the flood is open (the target is 100 ms; this
/// is the margin for a slow, busy machine; the measured figure is printed).
const HEALTH_WITHIN: Duration = Duration::from_secs(1);

pub fn run(suite: &Suite) {
    let count = if suite.short { 500 } else { 2000 };
    let dir = suite.dir.join("silent_connections");
    let (model_server, registry, s3) = three_servers(&suite.dir.join("models"), &dir, HEADER_TIMEOUT, Some(CAP));

    for (name, server, health) in [
        ("model server", &model_server, "/v2/health/ready"),
        ("registry", &registry, "/api/model_registry/v1/registered_models"),
        ("s3", &s3, "/"),
    ] {
        flood(suite, name, server.addr, health, count);
    }
}

/// `count` silent connections to `addr`, health while they are open, then every one closed.
fn flood(suite: &Suite, name: &str, addr: SocketAddr, health: &str, count: usize) {
    // (stream, when opened, how long the server kept it open)
    let mut silent: Vec<(TcpStream, Instant, Option<Duration>)> = Vec::with_capacity(count);
    for i in 0..count {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
            Ok(stream) => {
                stream.set_nonblocking(true).unwrap();
                silent.push((stream, Instant::now(), None));
            }
            Err(e) => {
                suite.fail(format!("{name}: silent connection #{i} not accepted: {e}"));
                break;
            }
        }
        if i % 100 == 99 {
            poll(&mut silent); // so that a connection closed at once is seen at once
        }
    }
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        let started = Instant::now();
        let (status, body) = raw(addr, &get_request(health));
        let elapsed = started.elapsed();
        slowest = slowest.max(elapsed);
        suite.status("silent flood", status);
        if !(status == 200 || status == 403) || elapsed > HEALTH_WITHIN {
            suite.crash(format!("{name}: health answered {status} after {elapsed:?} during the silent flood: {body}"));
        }
    }
    let deadline = Instant::now() + HEADER_TIMEOUT + Duration::from_secs(10);
    while poll(&mut silent) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let lifetimes: Vec<Duration> = silent.iter().filter_map(|c| c.2).collect();
    let at_once = lifetimes.iter().filter(|l| **l < HEADER_TIMEOUT - Duration::from_millis(200)).count();
    let longest = lifetimes.iter().max().copied().unwrap_or_default();
    suite.summary(format!(
        "silent connections, {name}: {count} opened, {} closed by the server ({at_once} within the {} s header \
         timeout to make room under the cap of {CAP}, the rest after it; longest open {:.2} s); health x10 \
         meanwhile, slowest {:.1} ms",
        lifetimes.len(),
        HEADER_TIMEOUT.as_secs(),
        longest.as_secs_f64(),
        slowest.as_secs_f64() * 1e3
    ));
    if lifetimes.len() != silent.len() {
        suite.fail(format!("{name}: {} of {count} silent connections still open", silent.len() - lifetimes.len()));
    }
    if longest > HEADER_TIMEOUT + Duration::from_secs(5) {
        suite.fail(format!("{name}: a silent connection stayed open {longest:?} (header timeout {HEADER_TIMEOUT:?})"));
    }
}

/// Notes the connections the server has closed; returns how many are still open.
fn poll(silent: &mut [(TcpStream, Instant, Option<Duration>)]) -> usize {
    let mut buffer = [0u8; 512];
    let mut open = 0;
    for (stream, opened, lifetime) in silent.iter_mut().filter(|c| c.2.is_none()) {
        match stream.read(&mut buffer) {
            Ok(0) => *lifetime = Some(opened.elapsed()),
            Ok(_) => open += 1, // an answer (a 503); its end comes next
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => open += 1,
            Err(_) => *lifetime = Some(opened.elapsed()),
        }
    }
    open
}
