/*
 * web_assets: the files of the web folder embedded with .incbin, plus the table static_files.c reads
 * (struct web_asset: path, content type, data, size; pointer-sized fields so that it works
 * on 32- and 64-bit targets). A file that does not exist yet is left out of the table
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

        str p_index, "/index.html"
        str p_app, "/app.js"
        str p_style, "/style.css"
        str p_favicon, "/favicon.svg"
        str t_html, "text/html; charset=utf-8"
        str t_js, "text/javascript; charset=utf-8"
        str t_css, "text/css; charset=utf-8"
        str t_svg, "image/svg+xml"

        .section .data.rel.ro, "aw"
        .balign 16
        .globl pirec_web_assets
pirec_web_assets:
        entry p_index, t_html, web_index
#if __has_include("../../web/app.js")
        entry p_app, t_js, web_app
#endif
#if __has_include("../../web/style.css")
        entry p_style, t_css, web_style
#endif
#if __has_include("../../web/favicon.svg")
        entry p_favicon, t_svg, web_favicon
#endif
        .dc.a 0, 0, 0, 0

        .section .note.GNU-stack, "", %progbits
