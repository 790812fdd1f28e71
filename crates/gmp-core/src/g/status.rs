//! Go-visible goroutine status and wait reasons (runtime2.go `_Grunnable`
//! ... and `waitReason`), as the dump, schedtrace and `goroutines()` show
//! them.

/// A goroutine's status, with Go's numeric values (`as u32`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum GStatus {
    /// Just allocated, not yet runnable.
    Idle = 0,
    /// In a run queue.
    Runnable = 1,
    /// Being polled by an M.
    Running = 2,
    /// Inside `gmp::syscall`.
    Syscall = 3,
    /// Parked: waiting for a wake.
    Waiting = 4,
    /// Finished.
    Dead = 6,
}

impl GStatus {
    pub(crate) fn from_u8(v: u8) -> GStatus {
        match v {
            0 => GStatus::Idle,
            1 => GStatus::Runnable,
            2 => GStatus::Running,
            3 => GStatus::Syscall,
            4 => GStatus::Waiting,
            _ => GStatus::Dead,
        }
    }

    /// Go's lower-case name as printed in a goroutine dump header.
    pub fn as_str(self) -> &'static str {
        match self {
            GStatus::Idle => "idle",
            GStatus::Runnable => "runnable",
            GStatus::Running => "running",
            GStatus::Syscall => "syscall",
            GStatus::Waiting => "waiting",
            GStatus::Dead => "dead",
        }
    }
}

/// Low bits of the header's wait-reason byte: the `WaitReason`.
pub(crate) const REASON_MASK: u8 = 0x3f;
/// High bits: a plain thread may complete this wait (checkdead skips it).
pub(crate) const EXTERNAL: u8 = 0x40;

/// One table, one macro: the enum, the byte decoding, Go's strings and
/// the trace's park labels all come from the list below, so they cannot
/// drift apart.
macro_rules! wait_reasons {
    ($($(#[$doc:meta])* $name:ident => $text:literal,)*) => {
        /// Why a goroutine is parked, with Go's strings.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        #[non_exhaustive]
        pub enum WaitReason {
            $($(#[$doc])* $name,)*
        }

        impl WaitReason {
            const ALL: &'static [WaitReason] = &[$(WaitReason::$name,)*];

            pub(crate) fn from_u8(v: u8) -> WaitReason {
                Self::ALL
                    .get((v & REASON_MASK) as usize)
                    .copied()
                    .unwrap_or(WaitReason::None)
            }

            /// Go's string for this reason (runtime2.go `waitReasonStrings`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(WaitReason::$name => $text,)*
                }
            }

            /// The trace's label for a poll that ended parked for this
            /// reason.
            pub(crate) fn park_label(self) -> &'static str {
                const LABELS: &[&str] = &[$(concat!("park: ", $text),)*];
                match self {
                    WaitReason::None => "park: waiting",
                    r => LABELS[r as usize],
                }
            }
        }
    };
}

wait_reasons! {
    /// No reason recorded (a foreign future parked the goroutine).
    None => "",
    ChanReceive => "chan receive",
    ChanSend => "chan send",
    ChanReceiveNilChan => "chan receive (nil chan)",
    ChanSendNilChan => "chan send (nil chan)",
    Select => "select",
    SelectNoCases => "select (no cases)",
    Sleep => "sleep",
    IoWait => "IO wait",
    SyncWaitGroupWait => "sync.WaitGroup.Wait",
    SyncMutexLock => "sync.Mutex.Lock",
    SyncRWMutexRLock => "sync.RWMutex.RLock",
    SyncRWMutexLock => "sync.RWMutex.Lock",
    SyncCondWait => "sync.Cond.Wait",
    Semacquire => "semacquire",
    Join => "join",
}
