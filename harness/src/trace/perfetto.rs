//! A trace as Perfetto (and chrome://tracing) open it: the Trace Event
//! JSON format. A track per process and thread, each program's run from
//! exec to exit as a slice, syscalls and libc calls as slices, execs,
//! connections and signals as instants with their details, and forks as
//! flows from parent to child.

use std::collections::BTreeMap;
use std::io;

use serde_json::{json, Value};

use crate::event::EventKind;
use crate::trace::Trace;

/// Nanoseconds from the trace's start as the format's microseconds.
fn us(ns: u64, start: u64) -> f64 {
    ns.saturating_sub(start) as f64 / 1000.0
}

impl Trace {
    /// The trace in Perfetto's JSON format (the Trace Event format), which
    /// ui.perfetto.dev opens: a track per process and thread, a slice per
    /// program from its exec to its exit, a slice per syscall and libc
    /// call, instants for execs, network events and signals, and a flow
    /// per fork.
    ///
    /// ```no_run
    /// let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.write_perfetto(std::fs::File::create("trace.json")?)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When the writer fails.
    pub fn write_perfetto(&self, w: impl io::Write) -> io::Result<()> {
        serde_json::to_writer(w, &self.perfetto()).map_err(io::Error::from)
    }

    fn perfetto(&self) -> Value {
        let start = self.start_ns();
        let end = self.events.iter().map(|e| e.ts_ns).max().unwrap_or(start);
        let mut out: Vec<Value> = Vec::new();
        // Each process's current program and when it started running it.
        let mut running: BTreeMap<u32, (String, u64)> = BTreeMap::new();
        let mut names: BTreeMap<u32, String> = BTreeMap::new();
        let mut threads: BTreeMap<(u32, u32), ()> = BTreeMap::new();
        let mut order: Vec<usize> = (0..self.events.len()).collect();
        order.sort_by_key(|&i| (self.events[i].ts_ns, i));
        let slice = |name: &str, pid: u32, since: u64, until: u64| {
            json!({ "name": name, "cat": "program", "ph": "X", "pid": pid, "tid": pid,
                    "ts": us(since, start), "dur": us(until, since) })
        };
        let mut flow = 0u64;
        for i in order {
            let e = &self.events[i];
            threads.insert((e.pid, e.tid), ());
            let ts = us(e.ts_ns, start);
            let (pid, tid) = (e.pid, e.tid);
            match &e.kind {
                EventKind::Syscall(s) => out.push(json!({
                    "name": s.name, "cat": "syscall", "ph": "X", "pid": pid, "tid": tid, "ts": ts,
                    "dur": s.duration_ns as f64 / 1000.0,
                    "args": { "args": crate::text::line_at_depth(e, 0), "ret": s.ret, "errno": s.errno },
                })),
                EventKind::Libc(c) => out.push(json!({
                    "name": c.function, "cat": "libc", "ph": "X", "pid": pid, "tid": tid, "ts": ts,
                    "dur": c.duration_ns as f64 / 1000.0,
                    "args": { "call": crate::text::line_at_depth(e, 0) },
                })),
                EventKind::Exec(x) => {
                    let program = x.filename.to_string_lossy().into_owned();
                    if let Some((name, since)) = running.insert(pid, (program.clone(), e.ts_ns)) {
                        out.push(slice(&name, pid, since, e.ts_ns));
                    }
                    names.insert(pid, program.clone());
                    let argv: Vec<String> = x.argv.iter().map(|a| a.to_string_lossy().into_owned()).collect();
                    out.push(json!({ "name": "exec", "cat": "exec", "ph": "i", "s": "t", "pid": pid, "tid": tid,
                                     "ts": ts, "args": { "filename": program, "argv": argv } }));
                }
                EventKind::Fork(f) => {
                    flow += 1;
                    out.push(json!({ "name": "fork", "cat": "fork", "ph": "s", "id": flow, "pid": pid, "tid": tid, "ts": ts }));
                    // The child's process id is its own task id when it is a
                    // process; a thread's lands on its tid's track.
                    out.push(json!({ "name": "fork", "cat": "fork", "ph": "f", "bp": "e", "id": flow,
                                     "pid": f.child_tid, "tid": f.child_tid, "ts": ts }));
                }
                EventKind::Exit(x) if x.process_exited => {
                    if let Some((name, since)) = running.remove(&pid) {
                        out.push(slice(&name, pid, since, e.ts_ns));
                    }
                    let status = x.status.map(|s| s.to_string());
                    out.push(json!({ "name": "exit", "cat": "exit", "ph": "i", "s": "t", "pid": pid, "tid": tid,
                                     "ts": ts, "args": { "status": status } }));
                }
                EventKind::Exit(_) => {}
                EventKind::Signal(s) => out.push(json!({
                    "name": s.name, "cat": "signal", "ph": "i", "s": "t", "pid": pid, "tid": tid, "ts": ts,
                })),
                EventKind::Net(n) => out.push(json!({
                    "name": format!("{} {}", match n.protocol { crate::event::Protocol::Tcp => "tcp", crate::event::Protocol::Udp => "udp" }, n.op.name()),
                    "cat": "net", "ph": "i", "s": "t", "pid": pid, "tid": tid, "ts": ts,
                    "args": { "peer": n.peer.map(|p| p.to_string()), "host": n.host, "bytes_sent": n.bytes_sent,
                              "bytes_received": n.bytes_received, "len": n.len },
                })),
            }
        }
        // Programs still running when the trace ended.
        for (pid, (name, since)) in running {
            out.push(slice(&name, pid, since, end));
        }
        for (pid, name) in &names {
            let short = name.rsplit('/').next().unwrap_or(name);
            out.push(json!({ "name": "process_name", "ph": "M", "pid": pid, "args": { "name": format!("{short} ({pid})") } }));
        }
        for &(pid, tid) in threads.keys() {
            out.push(json!({ "name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": { "name": format!("{tid}") } }));
        }
        json!({ "traceEvents": out, "displayTimeUnit": "ns" })
    }
}

#[cfg(test)]
mod tests {
    use crate::trace::test_support::{exec, path, sys, trace};

    #[test]
    fn reads_back_with_tracks_slices_instants_and_flows() {
        let mut events = vec![
            exec(1_000, 10, "/bin/sh"),
            crate::event::Event {
                ts_ns: 2_000,
                pid: 10,
                tid: 10,
                kind: crate::event::EventKind::Fork(crate::event::Fork { child_tid: 11, untracked: false }),
            },
            exec(3_000, 11, "/bin/cat"),
            sys(4_000, 11, 11, "openat", vec![path("/etc/hostname")], 3),
        ];
        events.push(crate::event::Event {
            ts_ns: 9_000,
            pid: 11,
            tid: 11,
            kind: crate::event::EventKind::Exit(crate::event::Exit {
                process_exited: true,
                status: Some(crate::event::ExitStatus::Code(0)),
            }),
        });
        let t = trace(events, None);
        let mut buf = Vec::new();
        t.write_perfetto(&mut buf).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        let evs = v["traceEvents"].as_array().unwrap();
        let find = |ph: &str, name: &str| evs.iter().filter(|e| e["ph"] == ph && e["name"] == name).count();
        assert_eq!(find("X", "openat"), 1);
        assert_eq!(find("X", "/bin/cat"), 1, "cat runs from its exec to its exit: {v:#}");
        assert_eq!(find("X", "/bin/sh"), 1, "sh still runs at the end");
        assert_eq!(find("i", "exec"), 2);
        assert_eq!(find("s", "fork") + find("f", "fork"), 2);
        assert_eq!(find("M", "process_name"), 2);
        let cat = evs.iter().find(|e| e["name"] == "/bin/cat").unwrap();
        assert_eq!((cat["ts"].as_f64(), cat["dur"].as_f64()), (Some(2.0), Some(6.0)));
    }
}
