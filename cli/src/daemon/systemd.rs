//! `probity daemon --install` and `--print-systemd`: the systemd socket
//! and service units for this binary, and the group its users join.

use std::path::Path;

use anyhow::Context;

const UNIT_DIR: &str = "/etc/systemd/system";

/// Both units, as files: `(name, text)`.
fn files(socket: &Path, group: &str) -> Vec<(&'static str, String)> {
    let exe = std::env::current_exe().map_or_else(|_| "/usr/local/bin/probity".into(), |p| p.display().to_string());
    let socket_unit = format!(
        "[Unit]\n\
         Description=probity tracing service socket\n\
         \n\
         [Socket]\n\
         ListenStream={socket}\n\
         SocketUser=root\n\
         SocketGroup={group}\n\
         SocketMode=0660\n\
         DirectoryMode=0755\n\
         \n\
         [Install]\n\
         WantedBy=sockets.target\n",
        socket = socket.display()
    );
    let service_unit = format!(
        "[Unit]\n\
         Description=probity tracing service: eBPF tracing for the members of group {group}\n\
         Requires=probity.socket\n\
         After=probity.socket\n\
         \n\
         [Service]\n\
         Type=simple\n\
         ExecStart={exe} daemon --socket {socket} --group {group}\n\
         ExecReload=/bin/kill -HUP $MAINPID\n\
         KillSignal=SIGTERM\n\
         TimeoutStopSec=30\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        socket = socket.display()
    );
    vec![("probity.socket", socket_unit), ("probity.service", service_unit)]
}

/// The units as `--print-systemd` shows them.
pub fn units(socket: &Path, group: &str) -> String {
    files(socket, group).into_iter().map(|(name, text)| format!("# {UNIT_DIR}/{name}\n{text}\n")).collect()
}

/// Writes the units, creates the group, and says what is left to do.
pub fn install(socket: &Path, group: &str) -> anyhow::Result<()> {
    if nix::unistd::Group::from_name(group)?.is_none() {
        let status = std::process::Command::new("groupadd")
            .args(["--system", group])
            .status()
            .context("cannot run groupadd (is this run as root?)")?;
        anyhow::ensure!(status.success(), "groupadd --system {group} failed ({status})");
        println!("created group {group}");
    }
    for (name, text) in files(socket, group) {
        let path = Path::new(UNIT_DIR).join(name);
        std::fs::write(&path, text)
            .with_context(|| format!("cannot write {} (is this run as root?)", path.display()))?;
        println!("wrote {}", path.display());
    }
    println!("next:");
    println!("  sudo systemctl daemon-reload && sudo systemctl enable --now probity.socket");
    println!("  sudo usermod -aG {group} USER   (the user logs in again for it to take effect)");
    println!("then `probity doctor` as that user says \"tracing via ... probity daemon\"");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_units_name_the_socket_and_group() {
        let text = units(Path::new("/run/p/s.sock"), "tracers");
        assert!(text.contains("ListenStream=/run/p/s.sock\n"), "{text}");
        assert!(text.contains("SocketGroup=tracers\nSocketMode=0660\n"), "{text}");
        assert!(text.contains(" daemon --socket /run/p/s.sock --group tracers\n"), "{text}");
        assert!(text.contains("# /etc/systemd/system/probity.service\n"), "{text}");
    }
}
