//! The `select!` macro: parses the arms, evaluates every channel operand
//! and send value once, in source order, into pinned case locals of the
//! enclosing async fn, awaits `Select` over them, and runs the chosen
//! arm's body in a plain `if`/`else` chain (see `select.rs`).

/// Go's `select` statement. See the crate docs for the syntax. Here off
/// the runtime (a plain thread's executor), where it works as well:
///
/// ```
/// use gmp_chan::{bounded, select};
///
/// futures::executor::block_on(async {
///     let (tx, rx) = bounded::<i32>(1);
///     // Unbuffered and nobody receives: its send case is never ready.
///     let (idle_tx, _idle_rx) = bounded::<&str>(0);
///     tx.send(7).await.unwrap();
///     let mut got = None;
///     select! {
///         recv(rx) -> v => got = v.ok(),
///         send(idle_tx, "unsent") -> res => res.unwrap(),
///         default => unreachable!("a value was buffered"),
///     }
///     assert_eq!(got, Some(7));
/// });
/// ```
#[macro_export]
macro_rules! select {
    () => {
        match $crate::__private::select_no_cases().await {}
    };
    ($($arms:tt)+) => {
        $crate::__select_parse!(@cases () @default () @idx (0usize) $($arms)+)
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select_parse {
    // All arms read.
    (@cases ($($c:tt)*) @default $d:tt @idx ($i:expr)) => {
        $crate::__select_emit!(($($c)*) $d)
    };
    // recv arms.
    (@cases ($($c:tt)*) @default $d:tt @idx ($i:expr)
        recv($rx:expr) -> $p:pat => $body:block, $($rest:tt)*) => {
        $crate::__select_parse!(@cases ($($c)* [recv __op __case __res ($i) ($rx) ($p) {$body}])
            @default $d @idx ($i + 1usize) $($rest)*)
    };
    (@cases ($($c:tt)*) @default $d:tt @idx ($i:expr)
        recv($rx:expr) -> $p:pat => $body:block $($rest:tt)*) => {
        $crate::__select_parse!(@cases ($($c)* [recv __op __case __res ($i) ($rx) ($p) {$body}])
            @default $d @idx ($i + 1usize) $($rest)*)
    };
    (@cases ($($c:tt)*) @default $d:tt @idx ($i:expr)
        recv($rx:expr) -> $p:pat => $body:expr, $($rest:tt)*) => {
        $crate::__select_parse!(@cases ($($c)* [recv __op __case __res ($i) ($rx) ($p) {$body}])
            @default $d @idx ($i + 1usize) $($rest)*)
    };
    (@cases ($($c:tt)*) @default $d:tt @idx ($i:expr)
        recv($rx:expr) -> $p:pat => $body:expr) => {
        $crate::__select_parse!(@cases ($($c)* [recv __op __case __res ($i) ($rx) ($p) {$body}])
            @default $d @idx ($i + 1usize))
    };
    // send arms.
    (@cases ($($c:tt)*) @default $d:tt @idx ($i:expr)
        send($tx:expr, $v:expr) -> $p:pat => $body:block, $($rest:tt)*) => {
        $crate::__select_parse!(@cases ($($c)* [send __op __case __res ($i) ($tx, $v) ($p) {$body}])
            @default $d @idx ($i + 1usize) $($rest)*)
    };
    (@cases ($($c:tt)*) @default $d:tt @idx ($i:expr)
        send($tx:expr, $v:expr) -> $p:pat => $body:block $($rest:tt)*) => {
        $crate::__select_parse!(@cases ($($c)* [send __op __case __res ($i) ($tx, $v) ($p) {$body}])
            @default $d @idx ($i + 1usize) $($rest)*)
    };
    (@cases ($($c:tt)*) @default $d:tt @idx ($i:expr)
        send($tx:expr, $v:expr) -> $p:pat => $body:expr, $($rest:tt)*) => {
        $crate::__select_parse!(@cases ($($c)* [send __op __case __res ($i) ($tx, $v) ($p) {$body}])
            @default $d @idx ($i + 1usize) $($rest)*)
    };
    (@cases ($($c:tt)*) @default $d:tt @idx ($i:expr)
        send($tx:expr, $v:expr) -> $p:pat => $body:expr) => {
        $crate::__select_parse!(@cases ($($c)* [send __op __case __res ($i) ($tx, $v) ($p) {$body}])
            @default $d @idx ($i + 1usize))
    };
    // default arm (at most one).
    (@cases $c:tt @default () @idx ($i:expr) default => $body:block, $($rest:tt)*) => {
        $crate::__select_parse!(@cases $c @default ({$body}) @idx ($i) $($rest)*)
    };
    (@cases $c:tt @default () @idx ($i:expr) default => $body:block $($rest:tt)*) => {
        $crate::__select_parse!(@cases $c @default ({$body}) @idx ($i) $($rest)*)
    };
    (@cases $c:tt @default () @idx ($i:expr) default => $body:expr, $($rest:tt)*) => {
        $crate::__select_parse!(@cases $c @default ({$body}) @idx ($i) $($rest)*)
    };
    (@cases $c:tt @default () @idx ($i:expr) default => $body:expr) => {
        $crate::__select_parse!(@cases $c @default ({$body}) @idx ($i))
    };
    (@cases $c:tt @default ($d:tt) @idx ($i:expr) default $($rest:tt)*) => {
        ::core::compile_error!("select!: more than one `default` arm")
    };
    (@cases $c:tt @default $d:tt @idx ($i:expr) $($rest:tt)+) => {
        ::core::compile_error!(
            "select!: expected `recv(rx) -> pat => body`, `send(tx, value) -> pat => body` or `default => body`"
        )
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select_case {
    (recv $op:ident $case:ident ($rx:expr)) => {
        let $op = &$rx;
        let mut $case = ::core::pin::pin!($crate::__private::RecvCase::new($op));
    };
    (send $op:ident $case:ident ($tx:expr, $v:expr)) => {
        let $op = &$tx;
        let mut $case = ::core::pin::pin!($crate::__private::SendCase::new($op, $v));
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select_emit {
    (($([$kind:ident $op:ident $case:ident $res:ident ($i:expr) $args:tt ($p:pat) $body:tt])*) ()) => {
        $crate::__select_emit!(@go ($([$kind $op $case $res ($i) $args ($p) $body])*)
            false { ::core::unreachable!() })
    };
    (($([$kind:ident $op:ident $case:ident $res:ident ($i:expr) $args:tt ($p:pat) $body:tt])*) ($default:tt)) => {
        $crate::__select_emit!(@go ($([$kind $op $case $res ($i) $args ($p) $body])*)
            true $default)
    };
    (@go ($([$kind:ident $op:ident $case:ident $res:ident ($i:expr) $args:tt ($p:pat) $body:tt])*)
        $has_default:tt $default:tt) => {{
        // The chosen case's outcome is moved out here, so that the cases
        // (and their borrows of the operands) are gone before an arm body
        // runs: a body may reassign an operand, as Go code sets `c = nil`.
        $( let mut $res = ::core::option::Option::None; )*
        let __sel_idx = {
            $( $crate::__select_case!($kind $op $case $args); )*
            let __sel_idx = $crate::__private::Select::new(
                [$($crate::__private::erase($case.as_mut())),*],
                $has_default,
            )
            .await;
            if let ::core::option::Option::Some(__sel_i) = __sel_idx {
                $( if __sel_i == $i { $res = ::core::option::Option::Some($case.as_mut().take()); } else )*
                {}
            }
            __sel_idx
        };
        match __sel_idx {
            ::core::option::Option::None => $default,
            ::core::option::Option::Some(__sel_i) => {
                $(
                    if __sel_i == $i {
                        let $p = match $res {
                            ::core::option::Option::Some(__v) => __v,
                            ::core::option::Option::None => ::core::unreachable!(),
                        };
                        $body
                    } else
                )*
                { ::core::unreachable!() }
            }
        }
    }};
}
