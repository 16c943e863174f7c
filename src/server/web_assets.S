/*
 * web_assets: the files of the web folder embedded with .incbin, plus the table static_files.c reads
 * (struct web_asset: path, content type, data, size, gzip data, gzip size; pointer-sized
 * fields so that it works on 32- and 64-bit targets). The gzip variants (NAME.gz) are made
 * by the Makefile into $(O)/web-gz, which is on the include path of this file. A file that does not exist yet is left out of the table
 * (__has_include), except index.html, which falls back to a one-line page.
 * Paths in .incbin are relative to the top of the tree, where make runs.
 * The files themselves belong to the web page.
 */
        .section .rodata
        .balign 16

        .macro blob label, file
        .balign 16
\label\()_start:
        .incbin "\file"
\label\()_end:
        .byte 0
        .endm

        .macro str label, text
\label:
        .asciz "\text"
        .endm

        .macro entry path, type, label
        .dc.a \path, \type, \label\()_start
        .dc.a \label\()_end - \label\()_start
        .endm

        /* after each entry: its gzip variant, or none */
        .macro gz label
        .dc.a \label\()_start, \label\()_end - \label\()_start
        .endm

        .macro nogz
        .dc.a 0, 0
        .endm

#if __has_include("../../web/index.html")
        blob web_index, "web/index.html"
#else
web_index_start:
        .ascii "<!doctype html><title>pirec</title><p>pirec: the web page was not built in.</p>\n"
web_index_end:
        .byte 0
#endif
#if __has_include("../../web/app.js")
        blob web_app, "web/app.js"
#endif
#if __has_include("../../web/style.css")
        blob web_style, "web/style.css"
#endif
#if __has_include("../../web/favicon.svg")
        blob web_favicon, "web/favicon.svg"
#endif
#if __has_include("../../web/manifest.webmanifest")
        blob web_manifest, "web/manifest.webmanifest"
#endif
#if __has_include("../../web/icon-192.png")
        blob web_icon192, "web/icon-192.png"
#endif
#if __has_include("../../web/icon-512.png")
        blob web_icon512, "web/icon-512.png"
#endif
#if __has_include("../../web/apple-touch-icon.png")
        blob web_touch, "web/apple-touch-icon.png"
#endif
#if __has_include("index.html.gz")
        blob web_index_gz, "index.html.gz"
#endif
#if __has_include("app.js.gz")
        blob web_app_gz, "app.js.gz"
#endif
#if __has_include("style.css.gz")
        blob web_style_gz, "style.css.gz"
#endif
#if __has_include("favicon.svg.gz")
        blob web_favicon_gz, "favicon.svg.gz"
#endif
#if __has_include("manifest.webmanifest.gz")
        blob web_manifest_gz, "manifest.webmanifest.gz"
#endif

        str p_index, "/index.html"
        str p_app, "/app.js"
        str p_style, "/style.css"
        str p_favicon, "/favicon.svg"
        str p_manifest, "/manifest.webmanifest"
        str p_icon192, "/icon-192.png"
        str p_icon512, "/icon-512.png"
        str p_touch, "/apple-touch-icon.png"
        str t_html, "text/html; charset=utf-8"
        str t_js, "text/javascript; charset=utf-8"
        str t_css, "text/css; charset=utf-8"
        str t_svg, "image/svg+xml"
        str t_manifest, "application/manifest+json"
        str t_png, "image/png"

        .section .data.rel.ro, "aw"
        .balign 16
        .globl pirec_web_assets
pirec_web_assets:
        entry p_index, t_html, web_index
#if __has_include("index.html.gz")
        gz web_index_gz
#else
        nogz
#endif
#if __has_include("../../web/app.js")
        entry p_app, t_js, web_app
#if __has_include("app.js.gz")
        gz web_app_gz
#else
        nogz
#endif
#endif
#if __has_include("../../web/style.css")
        entry p_style, t_css, web_style
#if __has_include("style.css.gz")
        gz web_style_gz
#else
        nogz
#endif
#endif
#if __has_include("../../web/favicon.svg")
        entry p_favicon, t_svg, web_favicon
#if __has_include("favicon.svg.gz")
        gz web_favicon_gz
#else
        nogz
#endif
#endif
#if __has_include("../../web/manifest.webmanifest")
        entry p_manifest, t_manifest, web_manifest
#if __has_include("manifest.webmanifest.gz")
        gz web_manifest_gz
#else
        nogz
#endif
#endif
#if __has_include("../../web/icon-192.png")
        entry p_icon192, t_png, web_icon192
        nogz
#endif
#if __has_include("../../web/icon-512.png")
        entry p_icon512, t_png, web_icon512
        nogz
#endif
#if __has_include("../../web/apple-touch-icon.png")
        entry p_touch, t_png, web_touch
        nogz
#endif
        .dc.a 0, 0, 0, 0, 0, 0

        .section .note.GNU-stack, "", %progbits
