//! `#[traced_test]`: a test function whose traced runs share its settings,
//! registered both as a libtest `#[test]` and for probity's own harness.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, ItemFn, Lit, Meta, ReturnType, Token};

pub struct TracedTest {
    item: ItemFn,
    timeout_ms: Option<u64>,
    preload_only: bool,
    ignore: Option<Option<String>>,
    should_panic: Option<Option<String>>,
}

impl TracedTest {
    pub fn parse(attr: TokenStream, item: TokenStream) -> syn::Result<Self> {
        let mut timeout_ms = None;
        let mut preload_only = false;
        let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(attr)?;
        for meta in metas {
            match &meta {
                Meta::Path(p) if p.is_ident("preload_only") => preload_only = true,
                Meta::NameValue(nv) if nv.path.is_ident("timeout") => {
                    let Expr::Lit(syn::ExprLit { lit: Lit::Str(s), .. }) = &nv.value else {
                        return Err(syn::Error::new(
                            nv.value.span(),
                            "expected a duration such as `timeout = \"30s\"` or `\"500ms\"`",
                        ));
                    };
                    timeout_ms = Some(parse_duration_ms(&s.value()).ok_or_else(|| {
                        syn::Error::new(s.span(), "expected a duration such as \"30s\", \"500ms\" or \"2m\"")
                    })?);
                }
                other => {
                    return Err(syn::Error::new(
                        other.span(),
                        "unknown setting: `#[traced_test]` takes `timeout = \"30s\"` and `preload_only`",
                    ))
                }
            }
        }
        let item: ItemFn = syn::parse2(item)?;
        let sig = &item.sig;
        if let Some(a) = &sig.asyncness {
            return Err(syn::Error::new(a.span(), "a traced test cannot be async: run the async code inside it"));
        }
        if !sig.inputs.is_empty() {
            return Err(syn::Error::new(sig.inputs.span(), "a traced test takes no arguments"));
        }
        if !sig.generics.params.is_empty() {
            return Err(syn::Error::new(sig.generics.span(), "a traced test cannot be generic"));
        }
        if let Some(u) = &sig.unsafety {
            return Err(syn::Error::new(u.span(), "a traced test cannot be unsafe"));
        }
        if let Some(t) = item.attrs.iter().find(|a| a.path().is_ident("test")) {
            return Err(syn::Error::new(t.span(), "`#[traced_test]` already makes this a test: remove `#[test]`"));
        }
        if let Some(a) = item.attrs.iter().find(|a| {
            a.path().is_ident("cfg_attr") && {
                let text = a.meta.to_token_stream().to_string();
                ["ignore", "should_panic", "test"]
                    .iter()
                    .any(|w| text.split(|c: char| !c.is_alphanumeric() && c != '_').any(|t| t == *w))
            }
        }) {
            return Err(syn::Error::new(
                a.span(),
                "`#[traced_test]` cannot see `ignore`, `should_panic` or `test` inside `cfg_attr`: use them directly",
            ));
        }
        let ignore = find_attr(&item.attrs, "ignore")?;
        let should_panic = find_attr(&item.attrs, "should_panic")?;
        if should_panic.is_some() && !matches!(sig.output, ReturnType::Default) {
            return Err(syn::Error::new(
                sig.output.span(),
                "a `#[should_panic]` test must return `()`, as with `#[test]`",
            ));
        }
        Ok(TracedTest { item, timeout_ms, preload_only, ignore, should_panic })
    }

    pub fn expand(&self) -> TokenStream {
        let ItemFn { attrs, vis, sig, block } = &self.item;
        let name = &sig.ident;
        let output = &sig.output;
        let meta = format_ident!("__PROBITY_META_{}", name.to_string().to_uppercase());
        let name_str = name.to_string();
        let opt_ms = match self.timeout_ms {
            Some(ms) => quote!(::core::option::Option::Some(#ms)),
            None => quote!(::core::option::Option::None),
        };
        let opt_text = |v: &Option<Option<String>>| match v {
            None => quote!(::core::option::Option::None),
            Some(None) => quote!(::core::option::Option::Some(::core::option::Option::None)),
            Some(Some(s)) => quote!(::core::option::Option::Some(::core::option::Option::Some(#s))),
        };
        let ignore = opt_text(&self.ignore);
        let should_panic = opt_text(&self.should_panic);
        let preload_only = self.preload_only;
        let ret_span = match output {
            ReturnType::Default => sig.ident.span(),
            ReturnType::Type(_, t) => t.span(),
        };
        // `#[test]` items vanish from `harness = false` targets (Cargo
        // builds them with `--cfg test` but without `--test`), so the body
        // lives in a plain function, registered for probity's harness, and
        // the libtest test calls it through the registry. That function has
        // the test's own name, in the test's own module, so what depends on
        // the enclosing function's name (insta's snapshot names) sees the
        // test's name. `#[should_panic]` is judged by probity (from the
        // registered settings), not by libtest: otherwise probity's own
        // panic when it cannot trace would count as the expected one.
        let cfgs: Vec<_> = attrs.iter().filter(|a| a.path().is_ident("cfg")).collect();
        let test_attrs = attrs.iter().filter(|a| a.path().is_ident("ignore"));
        let fn_attrs = attrs.iter().filter(|a| {
            !a.path().is_ident("cfg") && !a.path().is_ident("ignore") && !a.path().is_ident("should_panic")
        });
        let into_result = quote_spanned! {ret_span=>
            ::probity::__private::TestResult::into_result(#name())
        };
        quote! {
            #(#cfgs)*
            #(#test_attrs)*
            #[test]
            #vis fn #name() {
                ::probity::__private::run_registered(&#meta)
            }

            #(#cfgs)*
            #[doc(hidden)]
            #[allow(non_upper_case_globals)]
            static #meta: ::probity::__private::TestMeta = ::probity::__private::TestMeta {
                module: ::core::module_path!(),
                name: #name_str,
                file: ::core::file!(),
                line: ::core::line!(),
                timeout_ms: #opt_ms,
                preload_only: #preload_only,
                ignore: #ignore,
                should_panic: #should_panic,
            };

            #(#cfgs)*
            const _: () = {
                #(#fn_attrs)*
                fn #name() #output {
                    ::probity::__private::run_test(&#meta, || #output #block)
                }

                ::probity::__private::inventory::submit! {
                    ::probity::__private::TestCase {
                        meta: &#meta,
                        run: || #into_result,
                    }
                }
            };
        }
    }
}

/// `#[name]`, `#[name = "text"]` or `#[name(expected = "text")]`.
fn find_attr(attrs: &[Attribute], name: &str) -> syn::Result<Option<Option<String>>> {
    let Some(attr) = attrs.iter().find(|a| a.path().is_ident(name)) else { return Ok(None) };
    match &attr.meta {
        Meta::Path(_) => Ok(Some(None)),
        Meta::NameValue(nv) => match &nv.value {
            Expr::Lit(syn::ExprLit { lit: Lit::Str(s), .. }) => Ok(Some(Some(s.value()))),
            other => Err(syn::Error::new(other.span(), "expected a string")),
        },
        Meta::List(list) => {
            let mut text = None;
            list.parse_nested_meta(|m| {
                if m.path.is_ident("expected") {
                    let s: syn::LitStr = m.value()?.parse()?;
                    text = Some(s.value());
                    Ok(())
                } else {
                    Err(m.error("expected `expected = \"...\"`"))
                }
            })?;
            Ok(Some(text))
        }
    }
}

/// "30s", "500ms", "2m", "1.5s" in milliseconds.
fn parse_duration_ms(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = num.trim().parse().ok()?;
    let ms = match unit {
        "ms" => n,
        "s" => n * 1e3,
        "m" | "min" => n * 60e3,
        _ => return None,
    };
    (ms.is_finite() && ms >= 1.0).then_some(ms as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole expansion, formatted as source so a snapshot reads (and
    /// diffs) like the code it is; or why the test is refused.
    fn expand(attr: &str, item: &str) -> String {
        match TracedTest::parse(attr.parse().unwrap(), item.parse().unwrap()) {
            Ok(t) => {
                let file =
                    syn::parse2(t.expand()).unwrap_or_else(|e| panic!("the expansion is not a list of items: {e}"));
                prettyplease::unparse(&file)
            }
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn a_test_keeps_its_attributes_and_registers_its_settings() {
        insta::assert_snapshot!(expand(
            r#"timeout = "1.5s""#,
            "/// Saves.\n#[cfg(unix)] #[ignore = \"slow\"] fn saves() -> Result<(), String> { Ok(()) }"
        ));
    }

    #[test]
    fn should_panic_expectations_are_read() {
        insta::assert_snapshot!(expand("preload_only", "#[should_panic(expected = \"boom\")] fn t() {}"));
    }

    #[test]
    fn misuse_is_refused_with_a_reason() {
        assert_eq!(expand("", "fn t(x: u32) {}"), "error: a traced test takes no arguments");
        assert_eq!(expand("", "async fn t() {}"), "error: a traced test cannot be async: run the async code inside it");
        assert_eq!(
            expand("", "#[test] fn t() {}"),
            "error: `#[traced_test]` already makes this a test: remove `#[test]`"
        );
        assert_eq!(
            expand("retries = 3", "fn t() {}"),
            "error: unknown setting: `#[traced_test]` takes `timeout = \"30s\"` and `preload_only`"
        );
        assert_eq!(
            expand("timeout = \"soon\"", "fn t() {}"),
            "error: expected a duration such as \"30s\", \"500ms\" or \"2m\""
        );
        assert_eq!(
            expand("", "#[should_panic] fn t() -> Result<(), String> { Ok(()) }"),
            "error: a `#[should_panic]` test must return `()`, as with `#[test]`"
        );
        assert_eq!(
            expand("", "#[cfg_attr(unix, ignore)] fn t() {}"),
            "error: `#[traced_test]` cannot see `ignore`, `should_panic` or `test` inside `cfg_attr`: use them directly"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("30s"), Some(30_000));
        assert_eq!(parse_duration_ms("500ms"), Some(500));
        assert_eq!(parse_duration_ms("2m"), Some(120_000));
        assert_eq!(parse_duration_ms("0s"), None);
        assert_eq!(parse_duration_ms("10"), None);
    }
}
