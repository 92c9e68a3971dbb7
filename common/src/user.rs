//! What only userspace needs of these types: `aya::Pod`, so the harness
//! can read and write them in BPF maps.

use crate::{Losses, SessionConfig, SockOwner, SyscallSpec, SyscallStats};

// SAFETY: plain `repr(C)` data without padding, valid for any bit
// pattern (checked by each type's size assertion); likewise below.
unsafe impl aya::Pod for SyscallSpec {}
// SAFETY: as above.
unsafe impl aya::Pod for SessionConfig {}
// SAFETY: as above.
unsafe impl aya::Pod for SyscallStats {}
// SAFETY: as above.
unsafe impl aya::Pod for Losses {}
// SAFETY: as above.
unsafe impl aya::Pod for SockOwner {}
