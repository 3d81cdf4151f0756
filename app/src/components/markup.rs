//! HTML written straight into one string, for the long server-rendered lists that no island
//! hydrates (a history page's fifty operations). Built as views, each row's cells were a
//! dozen typed nodes, markers and small strings; written here, a row is a few appends.
//!
//! Only literals go in unescaped ([`Markup::raw`] takes `&'static str`): every value —
//! handles, e-mail addresses, image names, anything a person or a registry chose — goes
//! through [`Markup::text`] or [`Markup::attr`], which escape it.

/// A growing piece of HTML.
pub struct Markup(String);

impl Markup {
    pub fn with_capacity(bytes: usize) -> Self {
        Self(String::with_capacity(bytes))
    }

    /// Markup of our own (tags, attribute names, fixed words): never data.
    pub fn raw(&mut self, html: &'static str) -> &mut Self {
        self.0.push_str(html);
        self
    }

    /// Text between tags, escaped.
    pub fn text(&mut self, text: &str) -> &mut Self {
        html_escape::encode_text_to_string(text, &mut self.0);
        self
    }

    /// A double-quoted attribute's value, escaped.
    pub fn attr(&mut self, value: &str) -> &mut Self {
        html_escape::encode_double_quoted_attribute_to_string(value, &mut self.0);
        self
    }

    /// A number (nothing to escape).
    pub fn number(&mut self, n: i64) -> &mut Self {
        use std::fmt::Write;
        let _ = write!(self.0, "{n}");
        self
    }

    /// A coordinate, to a tenth (nothing to escape).
    pub fn fixed(&mut self, x: f64) -> &mut Self {
        use std::fmt::Write;
        let _ = write!(self.0, "{x:.1}");
        self
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_and_literals_are_not() {
        let mut html = Markup::with_capacity(0);
        html.raw(r#"<a title=""#)
            .attr(r#"x" onclick="alert(1)"#)
            .raw(r#"">"#)
            .text("<script>&</script>")
            .raw("</a> #")
            .number(-42)
            .raw(" ")
            .fixed(2.0 / 3.0);
        assert_eq!(
            html.into_string(),
            r#"<a title="x&quot; onclick=&quot;alert(1)">&lt;script&gt;&amp;&lt;/script&gt;</a> #-42 0.7"#
        );
    }
}
