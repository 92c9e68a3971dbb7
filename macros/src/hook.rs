//! `#[hook]`: parse a C-signature function, expand it into an exported
//! symbol that calls the real function and records the call.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, Pat, ReturnType};

/// When the body records the call.
#[derive(Debug, PartialEq, Eq)]
enum Phase {
    /// After the real call returned, with `ret` in scope.
    After,
    /// Before the real call, which may not return.
    Before,
}

pub struct Hook {
    item: ItemFn,
    phase: Phase,
    /// `#[hook(inject)]`: a fault-injection rule may answer the call
    /// instead of the real function, matched on its first argument.
    inject: bool,
    args: Vec<(syn::Ident, syn::Type)>,
}

impl Hook {
    pub fn parse(attr: TokenStream, item: TokenStream) -> syn::Result<Self> {
        let (phase, inject) = if attr.is_empty() {
            (Phase::After, false)
        } else {
            let ident: syn::Ident = syn::parse2(attr.clone()).map_err(|_| {
                syn::Error::new(attr.span(), "expected `#[hook]`, `#[hook(before)]` or `#[hook(inject)]`")
            })?;
            if ident == "inject" {
                (Phase::After, true)
            } else if ident == "before" {
                (Phase::Before, false)
            } else {
                return Err(syn::Error::new(
                    ident.span(),
                    "expected `before` (`#[hook(before)]` records before the call) or `inject` (`#[hook(inject)]`: \
                     fault-injection rules may answer the call)",
                ));
            }
        };
        let item: ItemFn = syn::parse2(item)?;
        let sig = &item.sig;
        match &sig.abi {
            Some(abi) if abi.name.as_ref().is_some_and(|n| n.value() == "C") => {}
            _ => {
                return Err(syn::Error::new(
                    sig.fn_token.span(),
                    "a hook must have the C signature of the function it replaces: `unsafe extern \"C\" fn`",
                ))
            }
        }
        if sig.unsafety.is_none() {
            return Err(syn::Error::new(
                sig.fn_token.span(),
                "a hook is called from C with raw pointers: declare it `unsafe extern \"C\" fn`",
            ));
        }
        if let Some(v) = &sig.variadic {
            return Err(syn::Error::new(v.span(), "variadic hooks are not supported: declare the fixed arguments the ABI passes (e.g. `open(path, flags, mode)`)"));
        }
        if !sig.generics.params.is_empty() {
            return Err(syn::Error::new(sig.generics.span(), "a hook cannot be generic: it is one C symbol"));
        }
        let mut args = Vec::new();
        for input in &sig.inputs {
            match input {
                FnArg::Typed(pt) => match &*pt.pat {
                    Pat::Ident(pi) => args.push((pi.ident.clone(), (*pt.ty).clone())),
                    other => return Err(syn::Error::new(other.span(), "hook arguments must be plain names")),
                },
                FnArg::Receiver(r) => return Err(syn::Error::new(r.span(), "a hook is a free function, not a method")),
            }
        }
        let never = matches!(&sig.output, ReturnType::Type(_, t) if matches!(**t, syn::Type::Never(_)));
        if never && phase == Phase::After {
            return Err(syn::Error::new(
                sig.output.span(),
                "this function never returns: use `#[hook(before)]` to record it before the call",
            ));
        }
        if inject && !matches!(args.first(), Some((_, syn::Type::Ptr(_)))) {
            return Err(syn::Error::new(
                sig.inputs.span(),
                "`#[hook(inject)]` matches rules on the first argument: it must be a C string (`*const c_char`)",
            ));
        }
        if inject && matches!(sig.output, ReturnType::Default) {
            return Err(syn::Error::new(sig.span(), "`#[hook(inject)]` needs a result to answer with"));
        }
        Ok(Hook { item, phase, inject, args })
    }

    pub fn expand(&self) -> TokenStream {
        let ItemFn { attrs, vis: _, sig, block } = &self.item;
        let name = &sig.ident;
        let name_str = name.to_string();
        let c_name = syn::LitCStr::new(&std::ffi::CString::new(name_str.clone()).unwrap_or_default(), name.span());
        let arg_names: Vec<_> = self.args.iter().map(|(n, _)| n).collect();
        let arg_types: Vec<_> = self.args.iter().map(|(_, t)| t).collect();
        let output = &sig.output;
        let never = matches!(output, ReturnType::Type(_, t) if matches!(**t, syn::Type::Never(_)));
        let p = quote!(::probity_preload::__private);
        // `rec` and `ret` are the user's names for the recorder and the result.
        let rec = syn::Ident::new("rec", Span::call_site());
        let ret = syn::Ident::new("ret", Span::call_site());
        // The body runs in a closure; it reads the caller's raw pointers, so
        // it stays an unsafe context as it was in the `unsafe fn`.
        let body = quote_spanned!(block.span()=> {
            #[allow(unused_unsafe)]
            unsafe #block
        });

        let recorded = match self.phase {
            Phase::After => quote! {
                let #ret = __real(#(#arg_names),*);
                __call.after(#name_str, |#rec: &mut #p::Rec| { let #ret = #ret; #body; });
                #ret
            },
            Phase::Before if never => quote! {
                __call.before(#name_str, |#rec: &mut #p::Rec| { #body; });
                __real(#(#arg_names),*)
            },
            Phase::Before => quote! {
                let __pending = __call.before(#name_str, |#rec: &mut #p::Rec| { #body; });
                let #ret = __real(#(#arg_names),*);
                __pending.result(#name_str, #p::AsRet::as_ret(&#ret));
                #ret
            },
        };
        let answered = match (&sig.output, self.args.first()) {
            (ReturnType::Type(_, ty), Some((first, _))) if self.inject => quote! {
                if let Some(__code) = #p::injected_fault(#name_str, #first as *const ::std::ffi::c_char) {
                    let #ret: #ty = #p::Injectable::injected(__code);
                    __call.after_injected(#name_str, |#rec: &mut #p::Rec| { let #ret = #ret; #body; });
                    return #ret;
                }
            },
            _ => quote!(),
        };
        quote! {
            #(#attrs)*
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn #name(#(#arg_names: #arg_types),*) #output {
                type __Fn = unsafe extern "C" fn(#(#arg_types),*) #output;
                static __REAL: #p::Real<__Fn> = #p::Real::new(#c_name);
                // SAFETY: the symbol was declared with this exact signature.
                let __real: __Fn = unsafe { __REAL.get() };
                match #p::Call::begin() {
                    None => __real(#(#arg_names),*),
                    Some(mut __call) => { #answered #recorded }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole expansion, formatted as source so a snapshot reads (and
    /// diffs) like the code it is.
    fn expand(attr: TokenStream, item: TokenStream) -> String {
        let tokens = Hook::parse(attr, item).unwrap_or_else(|e| panic!("the hook is refused: {e}")).expand();
        let file = syn::parse2(tokens).unwrap_or_else(|e| panic!("the expansion is not a list of items: {e}"));
        prettyplease::unparse(&file)
    }

    /// Why a hook is refused.
    fn refusal(attr: TokenStream, item: TokenStream) -> String {
        match Hook::parse(attr, item) {
            Ok(_) => panic!("the hook is accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn exports_the_symbol_with_its_c_signature() {
        insta::assert_snapshot!(expand(
            quote!(),
            quote! {
                /// `getenv(3)`.
                unsafe extern "C" fn getenv(name: *const c_char) -> *mut c_char { rec.str(name).ret_str(ret); }
            },
        ));
    }

    #[test]
    fn before_hooks_record_the_result_when_the_call_returns() {
        insta::assert_snapshot!(expand(
            quote!(before),
            quote! {
                unsafe extern "C" fn execve(p: *const c_char, a: *const *const c_char, e: *const *const c_char) -> c_int { rec.path(p); }
            },
        ));
    }

    #[test]
    fn never_returning_functions_are_recorded_before_the_call() {
        insta::assert_snapshot!(expand(
            quote!(before),
            quote! { unsafe extern "C" fn _exit(code: c_int) -> ! { rec.int(code); } }
        ));
    }

    #[test]
    fn injectable_functions_may_be_answered_before_the_call() {
        insta::assert_snapshot!(expand(
            quote!(inject),
            quote! {
                unsafe extern "C" fn fopen(path: *const c_char, mode: *const c_char) -> *mut FILE {
                    rec.str(path).str(mode).ret_ptr(ret);
                }
            }
        ));
    }

    #[test]
    fn misuse_is_reported() {
        assert_eq!(
            refusal(quote!(), quote! { unsafe extern "C" fn _exit(code: c_int) -> ! { rec.int(code); } }),
            "this function never returns: use `#[hook(before)]` to record it before the call"
        );
        assert_eq!(
            refusal(quote!(), quote! { fn f(a: i32) -> i32 { } }),
            "a hook must have the C signature of the function it replaces: `unsafe extern \"C\" fn`"
        );
        assert_eq!(
            refusal(quote!(), quote! { extern "C" fn f(a: i32) -> i32 { } }),
            "a hook is called from C with raw pointers: declare it `unsafe extern \"C\" fn`"
        );
        assert_eq!(
            refusal(quote!(after), quote! { unsafe extern "C" fn f(a: i32) -> i32 { } }),
            "expected `before` (`#[hook(before)]` records before the call) or `inject` (`#[hook(inject)]`: \
             fault-injection rules may answer the call)"
        );
        assert_eq!(
            refusal(quote!(inject), quote! { unsafe extern "C" fn f(a: i32) -> i32 { } }),
            "`#[hook(inject)]` matches rules on the first argument: it must be a C string (`*const c_char`)"
        );
        assert_eq!(
            refusal(quote!(), quote! { unsafe extern "C" fn f((a, b): (i32, i32)) -> i32 { } }),
            "hook arguments must be plain names"
        );
    }
}
