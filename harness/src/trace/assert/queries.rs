//! The `check_*` and `assert_*` methods of [`Events`] and [`Syscalls`]:
//! counts and order of the events a query selects.

use super::counts::{count_check, Bound};
use super::order::order_check;
use super::violation::{ok_or_panic, Violation};
use crate::trace::query::{Events, Syscalls};

/// Expectations about the events a query selects.
macro_rules! query_checks {
    ($ty:ident, $ctor:literal) => {
        impl<'t> $ty<'t> {
            /// Checks that the query selects no event. Fails, saying why,
            /// when events were lost, a process the query is about was not
            /// covered by a tracer that sees these events, or an event's
            /// path could not be resolved.
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("trace.", $ctor, "().named(\"connect\").check_none()?;")]
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn check_none(&self) -> Result<(), Violation> {
                count_check(&self.0, Bound::AtMost(0))
            }

            /// Panics unless [`check_none`](Self::check_none) passes.
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("trace.", $ctor, "().named(\"connect\").assert_none();")]
            /// # Ok::<(), probity::Error>(())
            /// ```
            #[track_caller]
            pub fn assert_none(&self) {
                ok_or_panic(self.check_none());
            }

            /// Checks that the query selects exactly `n` events. Fails,
            /// saying why, when it cannot be shown that there are no more.
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("trace.", $ctor, "().named(\"execve\").check_exactly(1)?;")]
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn check_exactly(&self, n: usize) -> Result<(), Violation> {
                count_check(&self.0, Bound::Exactly(n))
            }

            /// Panics unless [`check_exactly`](Self::check_exactly) passes.
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("trace.", $ctor, "().named(\"execve\").assert_exactly(1);")]
            /// # Ok::<(), probity::Error>(())
            /// ```
            #[track_caller]
            pub fn assert_exactly(&self, n: usize) {
                ok_or_panic(self.check_exactly(n));
            }

            /// Checks that the query selects at most `n` events. Fails,
            /// saying why, when it cannot be shown that there are no more.
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("trace.", $ctor, "().named(\"openat\").check_at_most(100)?;")]
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn check_at_most(&self, n: usize) -> Result<(), Violation> {
                count_check(&self.0, Bound::AtMost(n))
            }

            /// Panics unless [`check_at_most`](Self::check_at_most) passes.
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("trace.", $ctor, "().named(\"openat\").assert_at_most(100);")]
            /// # Ok::<(), probity::Error>(())
            /// ```
            #[track_caller]
            pub fn assert_at_most(&self, n: usize) {
                ok_or_panic(self.check_at_most(n));
            }

            /// Checks that the query selects at least `n` events.
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("trace.", $ctor, "().named(\"execve\").check_at_least(1)?;")]
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn check_at_least(&self, n: usize) -> Result<(), Violation> {
                count_check(&self.0, Bound::AtLeast(n))
            }

            /// Panics unless [`check_at_least`](Self::check_at_least) passes.
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("trace.", $ctor, "().named(\"execve\").assert_at_least(1);")]
            /// # Ok::<(), probity::Error>(())
            /// ```
            #[track_caller]
            pub fn assert_at_least(&self, n: usize) {
                ok_or_panic(self.check_at_least(n));
            }

            /// Checks that this query's events all happen before any of
            /// `later`'s: both select something, and the last of these ends
            /// before the first of `later` starts. To compare only the
            /// first occurrence, narrow this query (for example with
            /// [`before`](Self::before)). Fails, saying why, when events
            /// were lost.
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("trace.", $ctor, "().named(\"execve\").check_before(trace.syscalls().named(\"exit_group\"))?;")]
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn check_before(&self, later: impl Into<Events<'t>>) -> Result<(), Violation> {
                order_check(&self.0, &later.into().0)
            }

            /// Panics unless [`check_before`](Self::check_before) passes.
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("trace.", $ctor, "().named(\"execve\").assert_before(trace.syscalls().named(\"exit_group\"));")]
            /// # Ok::<(), probity::Error>(())
            /// ```
            #[track_caller]
            pub fn assert_before(&self, later: impl Into<Events<'t>>) {
                ok_or_panic(self.check_before(later));
            }
        }
    };
}

query_checks!(Events, "events");
query_checks!(Syscalls, "syscalls");

/// A syscall query is also a query over events (that are syscalls).
impl<'t> From<Syscalls<'t>> for Events<'t> {
    fn from(s: Syscalls<'t>) -> Events<'t> {
        Events(s.0)
    }
}
