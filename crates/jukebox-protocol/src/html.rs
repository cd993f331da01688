//! Text made safe for HTML: the one escaper of everything jukebox renders as HTML, the
//! notebook's tables (`jukebox::display`) and the registry's web page (`jukebox-server`), so
//! user text (a model name, a metadata value) reaches the reader as text, never as markup.
//!
//! Written here rather than taken from a crate: it is the five replacements of html-escape's
//! `encode_quoted_attribute` (which the notebook tables used before), and the protocol crate,
//! linked by every client and server, keeps depending on serde alone.

/// Escapes `text` for HTML element content and quoted attribute values: `&`, `<`, `>`, `"` and
/// `'` become `&amp;`, `&lt;`, `&gt;`, `&quot;` and `&#x27;`; everything else is kept.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_five_reserved_characters_are_escaped_and_nothing_else() {
        let cases = [
            ("<i>a & \"b\"</i> 'c'", "&lt;i&gt;a &amp; &quot;b&quot;&lt;/i&gt; &#x27;c&#x27;"),
            ("mixtape · 0.342 / é", "mixtape · 0.342 / é"),
            ("", ""),
        ];
        for (text, escaped) in cases {
            assert_eq!(escape(text), escaped, "{text:?}");
        }
    }
}
