//! The settings a user picks for a trace (`probity run -s`, `--max-tasks`,
//! `--ring-mib`; `Tracer::with_string_limit` and its kin): each has one
//! name, its default and its bounds here, and is checked in one place, its
//! constructor, so the CLI, the tracer and the kernel side agree on them.

use core::fmt;
use core::str::FromStr;

use crate::MAX_CAPTURE;

/// Bytes of each read/write buffer kept, like `strace -s`: from 0 to
/// [`StringLimit::MAX`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StringLimit(u32);

impl StringLimit {
    /// The default, like `strace -s 32`.
    pub const DEFAULT: Self = Self(32);
    /// The most: a capture is at most [`MAX_CAPTURE`] bytes, one of which
    /// ends a string.
    pub const MAX: u32 = MAX_CAPTURE as u32 - 1;

    /// `n` bytes, if that is at most [`StringLimit::MAX`].
    pub const fn new(n: u32) -> Result<Self, KnobError> {
        if n <= Self::MAX {
            Ok(Self(n))
        } else {
            Err(KnobError::StringLimit)
        }
    }

    /// The limit in bytes.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl Default for StringLimit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for StringLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Most tasks (processes and threads) traced at once by one loaded
/// tracer: from 1 to [`MaxTasks::MAX`]. Further forks are counted as lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MaxTasks(u32);

impl MaxTasks {
    /// The default.
    pub const DEFAULT: Self = Self(32768);
    /// The most: the kernel's `PID_MAX_LIMIT`, beyond which no system has
    /// tasks.
    pub const MAX: u32 = 1 << 22;

    /// `n` tasks, if that is from 1 to [`MaxTasks::MAX`].
    pub const fn new(n: u32) -> Result<Self, KnobError> {
        if n >= 1 && n <= Self::MAX {
            Ok(Self(n))
        } else {
            Err(KnobError::MaxTasks)
        }
    }

    /// The limit in tasks.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl Default for MaxTasks {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for MaxTasks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Bytes of the kernel's ring buffer: a power of two from
/// [`RingBytes::MIN`] to [`RingBytes::MAX`], as the kernel takes for a
/// BPF ring buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RingBytes(u32);

impl RingBytes {
    /// The default.
    pub const DEFAULT: Self = Self(64 << 20);
    /// The default when syscalls are counted in the kernel (`--summary`):
    /// the ring carries process events only, and a small one is quicker to
    /// create and free (64 MiB took about 15 ms each way).
    pub const SUMMARY_DEFAULT: Self = Self(4 << 20);
    /// The least: a page.
    pub const MIN: u32 = 4096;
    /// The most: the kernel takes a power of two below 4 GiB.
    pub const MAX: u32 = 1 << 31;

    /// `n` bytes, if that is a power of two from [`RingBytes::MIN`] to
    /// [`RingBytes::MAX`].
    pub const fn new(n: u32) -> Result<Self, KnobError> {
        if n.is_power_of_two() && n >= Self::MIN && n <= Self::MAX {
            Ok(Self(n))
        } else {
            Err(KnobError::RingBytes)
        }
    }

    /// `mib` MiB, if that is a power of two from 1 to `MAX` bytes in MiB
    /// (the CLI's unit).
    pub const fn from_mib(mib: u32) -> Result<Self, KnobError> {
        if mib.is_power_of_two() && mib <= Self::MAX >> 20 {
            Ok(Self(mib << 20))
        } else {
            Err(KnobError::RingMib)
        }
    }

    /// The size in bytes.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl Default for RingBytes {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A setting out of its range. The value is not repeated: the caller
/// (and clap, for the CLI) shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KnobError {
    /// A string limit that is not a number up to [`StringLimit::MAX`].
    StringLimit,
    /// A task limit that is not a number from 1 to [`MaxTasks::MAX`].
    MaxTasks,
    /// A ring size in bytes that is not a power of two in range.
    RingBytes,
    /// A ring size in MiB that is not a power of two in range.
    RingMib,
}

impl fmt::Display for KnobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::StringLimit => write!(f, "string limit out of range 0..={}", StringLimit::MAX),
            Self::MaxTasks => write!(f, "task limit out of range 1..={}", MaxTasks::MAX),
            Self::RingBytes => {
                write!(f, "ring size not a power of two from {} to {} bytes", RingBytes::MIN, RingBytes::MAX)
            }
            Self::RingMib => {
                let max = RingBytes::MAX >> 20;
                write!(f, "ring size not a power of two from 1 to {max} MiB (1, 2, 4, ..., {max})")
            }
        }
    }
}

impl core::error::Error for KnobError {}

/// A number, as the CLI takes it.
impl FromStr for StringLimit {
    type Err = KnobError;

    fn from_str(s: &str) -> Result<Self, KnobError> {
        s.parse().map_err(|_| KnobError::StringLimit).and_then(Self::new)
    }
}

/// A number, as the CLI takes it.
impl FromStr for MaxTasks {
    type Err = KnobError;

    fn from_str(s: &str) -> Result<Self, KnobError> {
        s.parse().map_err(|_| KnobError::MaxTasks).and_then(Self::new)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::ToString;

    use super::*;

    #[test]
    fn each_knob_takes_its_range_and_refuses_the_rest() {
        assert_eq!(StringLimit::new(0).map(StringLimit::get), Ok(0));
        assert_eq!(StringLimit::new(4095).map(StringLimit::get), Ok(4095));
        assert_eq!(StringLimit::new(4096), Err(KnobError::StringLimit));
        assert_eq!(MaxTasks::new(0), Err(KnobError::MaxTasks));
        assert_eq!(MaxTasks::new(1 << 22).map(MaxTasks::get), Ok(1 << 22));
        assert_eq!(MaxTasks::new((1 << 22) + 1), Err(KnobError::MaxTasks));
        assert_eq!(RingBytes::new(4096).map(RingBytes::get), Ok(4096));
        assert_eq!(RingBytes::new(2048), Err(KnobError::RingBytes));
        assert_eq!(RingBytes::new(3 << 20), Err(KnobError::RingBytes));
        assert_eq!(RingBytes::new(1 << 31).map(RingBytes::get), Ok(1 << 31));
        assert_eq!(RingBytes::from_mib(1).map(RingBytes::get), Ok(1 << 20));
        assert_eq!(RingBytes::from_mib(2048).map(RingBytes::get), Ok(1 << 31));
        for mib in [0, 3, 4096] {
            assert_eq!(RingBytes::from_mib(mib), Err(KnobError::RingMib));
        }
    }

    #[test]
    fn the_defaults_are_in_range() {
        assert_eq!(StringLimit::new(StringLimit::DEFAULT.get()), Ok(StringLimit::DEFAULT));
        assert_eq!(MaxTasks::new(MaxTasks::DEFAULT.get()), Ok(MaxTasks::DEFAULT));
        assert_eq!(RingBytes::new(RingBytes::DEFAULT.get()), Ok(RingBytes::DEFAULT));
        assert_eq!(RingBytes::new(RingBytes::SUMMARY_DEFAULT.get()), Ok(RingBytes::SUMMARY_DEFAULT));
    }

    #[test]
    fn numbers_are_read_and_words_refused() {
        assert_eq!("512".parse(), Ok(StringLimit::new(512).unwrap()));
        assert_eq!("4096".parse::<StringLimit>(), Err(KnobError::StringLimit));
        assert_eq!("lots".parse::<StringLimit>(), Err(KnobError::StringLimit));
        assert_eq!("32".parse(), Ok(MaxTasks::new(32).unwrap()));
        assert_eq!("-1".parse::<MaxTasks>(), Err(KnobError::MaxTasks));
    }

    #[test]
    fn refusals_name_the_range() {
        assert_eq!(KnobError::StringLimit.to_string(), "string limit out of range 0..=4095");
        assert_eq!(KnobError::MaxTasks.to_string(), "task limit out of range 1..=4194304");
        assert_eq!(KnobError::RingBytes.to_string(), "ring size not a power of two from 4096 to 2147483648 bytes");
        assert_eq!(
            KnobError::RingMib.to_string(),
            "ring size not a power of two from 1 to 2048 MiB (1, 2, 4, ..., 2048)"
        );
    }
}
