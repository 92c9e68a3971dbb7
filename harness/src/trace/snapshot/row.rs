//! One line of a snapshot, as text or through serde.

/// One line of a snapshot.
#[derive(serde::Serialize)]
pub(crate) struct Row {
    pub(super) task: String,
    /// How many libc calls (shown) this event was made in.
    #[serde(skip_serializing_if = "crate::trace::is_zero")]
    pub(super) depth: usize,
    #[serde(flatten)]
    pub(super) what: What,
}

/// What a row shows.
#[derive(serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(super) enum What {
    Syscall {
        name: String,
        args: Vec<String>,
        result: String,
    },
    Exec {
        program: String,
        argv: Vec<String>,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        argv_truncated: bool,
    },
    NewTask {
        child: String,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        untracked: bool,
    },
    Libc {
        function: String,
        args: Vec<String>,
        result: String,
    },
    ThreadExited,
    Exited {
        status: String,
    },
    Signal {
        signal: String,
        code: i32,
        action: String,
    },
    Net {
        text: String,
    },
}

impl Row {
    pub(crate) fn text(&self) -> String {
        let body = match &self.what {
            What::Syscall { name, args, result } => format!("{name}({}) = {result}", args.join(", ")),
            What::Exec { program, argv, argv_truncated } => {
                let argv: Vec<String> = argv.iter().map(|a| format!("\"{a}\"")).collect();
                format!(
                    "+++ exec \"{program}\" [{}{}] +++",
                    argv.join(", "),
                    if *argv_truncated { ", ..." } else { "" }
                )
            }
            What::NewTask { child, untracked } => {
                format!("+++ new task {child}{} +++", if *untracked { " (NOT TRACED: task map full)" } else { "" })
            }
            What::Libc { function, args, result } => format!("libc {function}({}) = {result}", args.join(", ")),
            What::ThreadExited => "+++ thread exited +++".to_owned(),
            What::Exited { status } => format!("+++ {status} +++"),
            What::Signal { signal, code, action } => {
                format!("--- {signal} {{si_signo={signal}, si_code={code}}} ({action}) ---")
            }
            What::Net { text } => text.clone(),
        };
        format!("[{}] {}{body}", self.task, "  ".repeat(self.depth))
    }
}
