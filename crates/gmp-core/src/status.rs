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

/// Why a goroutine is parked, with Go's strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum WaitReason {
    /// No reason recorded (a foreign future parked the goroutine).
    None = 0,
    ChanReceive,
    ChanSend,
    ChanReceiveNilChan,
    ChanSendNilChan,
    Select,
    SelectNoCases,
    Sleep,
    IoWait,
    SyncWaitGroupWait,
    SyncMutexLock,
    SyncRWMutexRLock,
    SyncRWMutexLock,
    SyncCondWait,
    Semacquire,
    Join,
    Preempted,
}

impl WaitReason {
    pub(crate) fn from_u8(v: u8) -> WaitReason {
        use WaitReason::*;
        const ALL: [WaitReason; 17] = [
            None,
            ChanReceive,
            ChanSend,
            ChanReceiveNilChan,
            ChanSendNilChan,
            Select,
            SelectNoCases,
            Sleep,
            IoWait,
            SyncWaitGroupWait,
            SyncMutexLock,
            SyncRWMutexRLock,
            SyncRWMutexLock,
            SyncCondWait,
            Semacquire,
            Join,
            Preempted,
        ];
        ALL.get((v & REASON_MASK) as usize).copied().unwrap_or(None)
    }

    /// Go's string for this reason (runtime2.go `waitReasonStrings`).
    pub fn as_str(self) -> &'static str {
        use WaitReason::*;
        match self {
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
            Preempted => "preempted",
        }
    }
}
