//! Tests whose behaviour the gate judges, one unit each under nextest.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

/// Connects to a server on the loopback interface that it starts itself.
#[test]
fn connects_to_local_server() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let (mut s, _) = server.accept().unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
    });
    TcpStream::connect(addr).unwrap().write_all(b"hello").unwrap();
    t.join().unwrap();
}

/// Execs git.
#[test]
fn execs_git() {
    let out = std::process::Command::new("git").arg("--version").output().unwrap();
    assert!(out.status.success());
}

/// Does nothing the gate cares about.
#[test]
fn quiet() {
    assert_eq!(1 + 1, 2);
}
