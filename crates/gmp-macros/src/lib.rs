//! `#[gmp::main]` and `#[gmp::test]`: run an `async fn` as goroutine 1
//! (main) of a fresh gmp runtime.
//!
//! Use these through the facade (`#[gmp::main]`, `#[gmp::test]`); the
//! expansion names only `::gmp::...` paths.
//!
//! ```text
//! #[gmp::main(procs = 4)]
//! async fn main() -> Result<(), std::io::Error> { ... }
//! ```
//! expands to (roughly)
//! ```text
//! fn main() {
//!     async fn __gmp_main_body() -> Result<(), std::io::Error> { ... }
//!     let rt = ::gmp::__private::build_or_exit(Some(4));
//!     let result = ::gmp::__private::main_or_exit(|| {
//!         (&&::gmp::__private::MainFut::new(__gmp_main_body())).run_main(&rt, site)
//!     });
//!     ::gmp::__private::MainResult::report(result);
//!     ::gmp::__private::exit_now(0);
//! }
//! ```
//! The body is kept in a nested `async fn` with the user's own signature, so
//! `return`, `?` and type errors behave exactly as in the written function.
//! `run_main` picks, at compile time, an ordinary goroutine 1 when the body
//! is `Send` (any M polls it, as in Go) and a main locked to this thread
//! otherwise.
//!
//! Compile-fail cases (non-`async` fn, arguments, generics, unknown or
//! malformed attribute arguments) are reported with `compile_error!` at the
//! offending tokens; they are not covered by automated tests because the
//! workspace does not depend on `trybuild`.
use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{parse::Parser, Ident, ItemFn, LitInt, ReturnType};

/// Run an `async fn main` on a gmp runtime.
///
/// `#[gmp::main]` or `#[gmp::main(procs = N)]` (GOMAXPROCS; without it,
/// `GMP_MAXPROCS` or the CPU count). `main` may return `()` or
/// `Result<(), E: Debug>`; an `Err` prints `Error: {e:?}` and exits with
/// code 1. A malformed `GMP_MAXPROCS` prints the error and exits with code 2.
#[proc_macro_attribute]
pub fn main(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Main, attr.into(), item.into()).into()
}

/// Run an `async fn` test on its own gmp runtime.
///
/// `#[gmp::test]` or `#[gmp::test(procs = N)]`. Adds `#[test]`; keep other
/// attributes (`#[should_panic]`, `#[ignore]`) as usual. The test may return
/// `Result<(), E>` like any `#[test]` fn.
///
/// A panic in any goroutine the test started ends the test's runtime and
/// fails that test (with Go's panic report) and no other. Goroutines still
/// alive when the test returns, and for up to 1 s after, fail it with
/// their dump (Go's goleak); `#[gmp::test(allow_leaks)]` turns that off.
#[proc_macro_attribute]
pub fn test(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Test, attr.into(), item.into()).into()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Main,
    Test,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Main => "gmp::main",
            Kind::Test => "gmp::test",
        }
    }
}

#[derive(Default)]
struct Config {
    /// `procs = N`, with the literal (for spans).
    procs: Option<(usize, LitInt)>,
    /// `#[gmp::test(allow_leaks)]`: skip the leaked-goroutine check.
    allow_leaks: bool,
}

/// Accumulates errors so one expansion reports all of them.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    fn to_compile_errors(&self) -> TokenStream2 {
        match &self.0 {
            Some(e) => e.to_compile_error(),
            None => TokenStream2::new(),
        }
    }
}

fn parse_config(kind: Kind, attr: TokenStream2, errors: &mut Errors) -> Config {
    let mut cfg = Config::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("procs") {
            let lit: LitInt = match meta.value()?.parse() {
                Ok(lit) => lit,
                Err(e) => {
                    return Err(syn::Error::new(
                        e.span(),
                        "`procs` must be a positive integer literal, e.g. `procs = 4`",
                    ))
                }
            };
            let n: usize = lit.base10_parse().map_err(|_| {
                syn::Error::new(
                    lit.span(),
                    "`procs` must be a positive integer literal, e.g. `procs = 4`",
                )
            })?;
            if !lit.suffix().is_empty() && lit.suffix() != "usize" {
                return Err(syn::Error::new(
                    lit.span(),
                    "`procs` takes an unsuffixed integer (or `usize`)",
                ));
            }
            if n == 0 {
                return Err(syn::Error::new(
                    lit.span(),
                    "`procs` must be at least 1 (it is GOMAXPROCS)",
                ));
            }
            if cfg.procs.is_some() {
                return Err(meta.error("`procs` is given more than once"));
            }
            cfg.procs = Some((n, lit));
            Ok(())
        } else if kind == Kind::Test && meta.path.is_ident("allow_leaks") {
            if !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
                return Err(meta.error("`allow_leaks` takes no value"));
            }
            if cfg.allow_leaks {
                return Err(meta.error("`allow_leaks` is given more than once"));
            }
            cfg.allow_leaks = true;
            Ok(())
        } else {
            let key = meta.path.to_token_stream().to_string().replace(' ', "");
            let known = match kind {
                Kind::Main => "the only one is `procs = N`",
                Kind::Test => "the known ones are `procs = N` and `allow_leaks`",
            };
            Err(meta.error(format!(
                "unknown `{}` attribute `{key}`; {known}",
                kind.name()
            )))
        }
    });
    if let Err(e) = parser.parse2(attr) {
        errors.push(e);
    }
    cfg
}

/// Checks the signature. Returns false if the function cannot be expanded
/// at all (then the item is emitted unchanged next to the errors).
fn check_signature(kind: Kind, f: &ItemFn, errors: &mut Errors) -> bool {
    let sig = &f.sig;
    let mut ok = true;
    if sig.asyncness.is_none() {
        errors.push(syn::Error::new_spanned(
            sig.fn_token,
            "the `async` keyword is missing from the function declaration",
        ));
        ok = false;
    }
    if !sig.inputs.is_empty() {
        let what = match kind {
            Kind::Main => "`main` function",
            Kind::Test => "test function",
        };
        errors.push(syn::Error::new_spanned(
            &sig.inputs,
            format!("the {what} cannot take arguments"),
        ));
        ok = false;
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            format!("`#[{}]` functions cannot be generic", kind.name()),
        ));
        ok = false;
    }
    if let Some(c) = &sig.constness {
        errors.push(syn::Error::new_spanned(
            c,
            format!("`#[{}]` functions cannot be `const`", kind.name()),
        ));
        ok = false;
    }
    if let Some(v) = &sig.variadic {
        errors.push(syn::Error::new_spanned(
            v,
            "variadic functions are not supported",
        ));
        ok = false;
    }
    if kind == Kind::Test {
        for a in &f.attrs {
            if a.path().is_ident("test") {
                errors.push(syn::Error::new_spanned(
                    a,
                    "`#[gmp::test]` already adds `#[test]`; remove this one",
                ));
            }
        }
    }
    ok
}

fn expand(kind: Kind, attr: TokenStream2, item: TokenStream2) -> TokenStream2 {
    let mut errors = Errors::default();
    let f: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            let msg = format!("`#[{}]` goes on an `async fn` ({e})", kind.name());
            let err = syn::Error::new(e.span(), msg).to_compile_error();
            return quote! { #err #item };
        }
    };
    let cfg = parse_config(kind, attr, &mut errors);
    if !check_signature(kind, &f, &mut errors) {
        // Keep the user's item so the rest of the crate still resolves it.
        let errs = errors.to_compile_errors();
        return quote! { #errs #item };
    }
    let out = match kind {
        Kind::Main => expand_main(&f, &cfg),
        Kind::Test => expand_test(&f, &cfg),
    };
    let errs = errors.to_compile_errors();
    quote! { #errs #out }
}

/// The user's function as a nested `async fn` named `body_name`, without
/// its attributes and visibility (those stay on the generated outer fn).
fn inner_fn(f: &ItemFn, body_name: &Ident) -> TokenStream2 {
    let mut sig = f.sig.clone();
    sig.ident = body_name.clone();
    let block = &f.block;
    quote! { #sig #block }
}

/// Span for the runtime plumbing: the `fn` keyword, so failures to resolve
/// `::gmp` or trait errors point at the user's function.
fn plumbing_span(f: &ItemFn) -> Span {
    f.sig.fn_token.span()
}

fn outer_sig(f: &ItemFn) -> TokenStream2 {
    let mut sig = f.sig.clone();
    sig.asyncness = None;
    sig.to_token_stream()
}

fn expand_main(f: &ItemFn, cfg: &Config) -> TokenStream2 {
    let body_name = Ident::new("__gmp_main_body", Span::call_site());
    let inner = inner_fn(f, &body_name);
    let attrs = &f.attrs;
    let vis = &f.vis;
    let mut sig = f.sig.clone();
    sig.asyncness = None;
    // The generated `main` reports the result itself (exit code 1 on Err).
    sig.output = ReturnType::Default;
    let span = plumbing_span(f);
    let procs = match &cfg.procs {
        Some((_, lit)) => quote_spanned! {lit.span()=> ::core::option::Option::Some(#lit) },
        None => quote_spanned! {span=> ::core::option::Option::None },
    };
    // A return type that is neither `()` nor `Result<(), E: Debug>` is
    // reported at the user's return type.
    let report_span = match &f.sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => span,
    };
    let report = quote_spanned! {report_span=>
        ::gmp::__private::MainResult::report(__gmp_result);
    };
    let run = quote_spanned! {span=>
        let __gmp_rt = ::gmp::__private::build_or_exit(#procs);
        let __gmp_site = ::core::panic::Location::caller();
        #[allow(clippy::let_unit_value)]
        let __gmp_result = ::gmp::__private::main_or_exit(|| {
            #[allow(unused_imports)]
            use ::gmp::__private::{RunAsGoroutine as _, RunOnThisThread as _};
            (&&::gmp::__private::MainFut::new(#body_name())).run_main(&__gmp_rt, __gmp_site)
        });
        ::core::mem::drop(__gmp_rt);
        #report
        ::gmp::__private::exit_now(0);
    };
    quote! {
        #(#attrs)*
        #vis #sig {
            #inner
            #run
        }
    }
}

fn expand_test(f: &ItemFn, cfg: &Config) -> TokenStream2 {
    let body_name = Ident::new("__gmp_test_body", Span::call_site());
    let inner = inner_fn(f, &body_name);
    let attrs = &f.attrs;
    let vis = &f.vis;
    let sig = outer_sig(f);
    let span = plumbing_span(f);
    let procs = match &cfg.procs {
        Some((_, lit)) => quote_spanned! {lit.span()=> .procs(#lit) },
        None => TokenStream2::new(),
    };
    let check_leaks = !cfg.allow_leaks;
    let run = quote_spanned! {span=>
        let __gmp_rt = ::gmp::Runtime::builder()
            #procs
            .unhandled_panic(::gmp::UnhandledPanic::Propagate)
            .build()
            .expect("#[gmp::test]: building the gmp runtime failed");
        let __gmp_site = ::core::panic::Location::caller();
        #[allow(unused_imports)]
        use ::gmp::__private::{RunAsGoroutine as _, RunOnThisThread as _};
        (&&::gmp::__private::MainFut::new(::gmp::__private::test_main(
            #body_name(),
            #check_leaks,
        )))
        .run_main(&__gmp_rt, __gmp_site)
    };
    quote! {
        #[::core::prelude::v1::test]
        #(#attrs)*
        #vis #sig {
            #inner
            #run
        }
    }
}
