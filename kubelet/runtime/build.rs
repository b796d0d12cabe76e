//! musl targets only: the static `bramble` links Debian's libseccomp.a, which was compiled
//! against glibc with `_FORTIFY_SOURCE` and so calls `__fprintf_chk`, a glibc-only symbol musl
//! does not have. A tiny C shim provides it (forwarding to `vfprintf`). glibc targets build
//! nothing here.

use std::path::PathBuf;

/// glibc's fortified `fprintf`: the `flag` (fortify level) only asks for extra checks.
const SHIM: &str = r#"
#include <stdarg.h>
#include <stdio.h>

int __fprintf_chk(FILE *stream, int flag, const char *format, ...)
{
    va_list ap;
    int n;
    (void)flag;
    va_start(ap, format);
    n = vfprintf(stream, format, ap);
    va_end(ap);
    return n;
}
"#;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_ENV").as_deref() != Ok("musl") {
        return;
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let src = out.join("glibc_compat.c");
    std::fs::write(&src, SHIM).expect("write glibc_compat.c to OUT_DIR");
    cc::Build::new()
        .file(&src)
        .warnings(true)
        .compile("bramble_glibc_compat");
}
