//! `WWW-Authenticate` challenges (RFC 7235 §4.1), as registries send them on a 401.
//!
//! A header may carry several challenges, and a quoted value may itself contain commas
//! (`scope="repository:a:pull,push"`), so splitting on ',' is wrong: this walks the grammar
//!
//! ```text
//! challenges = challenge *( OWS "," OWS challenge )
//! challenge  = auth-scheme [ 1*SP ( token68 / auth-param *( OWS "," OWS auth-param ) ) ]
//! auth-param = token BWS "=" BWS ( token / quoted-string )
//! ```
//!
//! A comma can end a parameter or a whole challenge; what follows it decides which: a
//! token followed by `=` is another parameter, a bare token starts the next challenge.

/// One challenge: its scheme (lower-cased, as schemes are case-insensitive) and parameters
/// (names lower-cased, values as sent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// Every challenge in every `WWW-Authenticate` value, in order. Malformed parts are skipped,
/// not fatal: a registry that garbles one challenge may still offer a usable one.
pub fn parse_challenges<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<Challenge> {
    values.into_iter().flat_map(parse_header_value).collect()
}

fn parse_header_value(value: &str) -> Vec<Challenge> {
    let mut cursor = Cursor {
        bytes: value.as_bytes(),
        at: 0,
    };
    let mut challenges: Vec<Challenge> = Vec::new();
    loop {
        cursor.skip_separators();
        let Some(scheme) = cursor.token() else {
            if cursor.at_end() {
                break;
            }
            // Not a token where a scheme should be: drop everything up to the next comma.
            cursor.skip_past_comma();
            continue;
        };
        let mut challenge = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: Vec::new(),
        };
        cursor.skip_whitespace();
        if let Some(token68) = cursor.token68() {
            challenge.params.push((String::new(), token68));
        } else {
            // Parameters, until a bare token (the next challenge's scheme) or the end.
            loop {
                cursor.skip_separators();
                let checkpoint = cursor.at;
                let Some(name) = cursor.token() else {
                    if !cursor.at_end() {
                        cursor.skip_past_comma();
                        continue;
                    }
                    break;
                };
                cursor.skip_whitespace();
                if !cursor.eat(b'=') {
                    cursor.at = checkpoint;
                    break;
                }
                cursor.skip_whitespace();
                let value = if cursor.peek() == Some(b'"') {
                    cursor.quoted_string()
                } else {
                    cursor.token().map(str::to_owned)
                };
                match value {
                    Some(value) => challenge.params.push((name.to_ascii_lowercase(), value)),
                    None => cursor.skip_past_comma(),
                }
            }
        }
        challenges.push(challenge);
    }
    challenges
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn at_end(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    fn skip_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.at += 1;
        }
    }

    fn skip_past_comma(&mut self) {
        while let Some(byte) = self.peek() {
            self.at += 1;
            if byte == b',' {
                break;
            }
        }
    }

    /// RFC 7230 `token`: visible ASCII except delimiters.
    fn token(&mut self) -> Option<&'a str> {
        let start = self.at;
        while self.peek().is_some_and(is_tchar) {
            self.at += 1;
        }
        (self.at > start).then(|| {
            std::str::from_utf8(&self.bytes[start..self.at]).expect("token characters are ASCII")
        })
    }

    /// `token68` (e.g. `Negotiate abc123==`): only when it is the challenge's whole payload,
    /// i.e. not followed by `=` and a value.
    fn token68(&mut self) -> Option<String> {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
        {
            self.at += 1;
        }
        if self.at == start {
            return None;
        }
        while self.eat(b'=') {}
        let padded_end = self.at;
        self.skip_whitespace();
        if self.at_end() || self.peek() == Some(b',') {
            // `name=` followed by nothing is indistinguishable from token68 padding; a
            // parameter always has a value, so treat it as token68.
            return Some(String::from_utf8_lossy(&self.bytes[start..padded_end]).into_owned());
        }
        self.at = start;
        None
    }

    /// A quoted-string with its quotes removed and `\x` escapes resolved. An unterminated
    /// string runs to the end of the value.
    fn quoted_string(&mut self) -> Option<String> {
        if !self.eat(b'"') {
            return None;
        }
        let mut out = Vec::new();
        while let Some(byte) = self.peek() {
            self.at += 1;
            match byte {
                b'"' => break,
                b'\\' => {
                    if let Some(escaped) = self.peek() {
                        self.at += 1;
                        out.push(escaped);
                    }
                }
                other => out.push(other),
            }
        }
        Some(String::from_utf8_lossy(&out).into_owned())
    }
}

fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(value: &str) -> Challenge {
        let mut all = parse_challenges([value]);
        assert_eq!(all.len(), 1, "{all:?}");
        all.remove(0)
    }

    #[test]
    fn basic_challenge_from_distribution_htpasswd() {
        let challenge = one(r#"Basic realm="Registry Realm""#);
        assert_eq!(challenge.scheme, "basic");
        assert_eq!(challenge.param("realm"), Some("Registry Realm"));
    }

    #[test]
    fn bearer_challenge_with_commas_inside_a_quoted_scope() {
        let challenge = one(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#,
        );
        assert_eq!(challenge.scheme, "bearer");
        assert_eq!(
            challenge.param("realm"),
            Some("https://auth.docker.io/token")
        );
        assert_eq!(challenge.param("service"), Some("registry.docker.io"));
        assert_eq!(
            challenge.param("scope"),
            Some("repository:samalba/my-app:pull,push")
        );
    }

    #[test]
    fn error_parameters_after_an_insufficient_scope() {
        let challenge = one(
            r#"Bearer realm="http://127.0.0.1:1/token",service="svc",scope="repository:a/b:pull",error="insufficient_scope""#,
        );
        assert_eq!(challenge.param("error"), Some("insufficient_scope"));
    }

    #[test]
    fn scheme_and_parameter_names_are_case_insensitive_and_spacing_is_free() {
        let challenge = one("BEARER  Realm = \"https://x/token\" ,  Service=reg.example.com");
        assert_eq!(challenge.scheme, "bearer");
        assert_eq!(challenge.param("realm"), Some("https://x/token"));
        assert_eq!(challenge.param("SERVICE"), Some("reg.example.com"));
    }

    #[test]
    fn several_challenges_in_one_value() {
        let all = parse_challenges([
            r#"Basic realm="a, b", Bearer realm="https://t/token",service="s", Negotiate"#,
        ]);
        let schemes: Vec<&str> = all.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["basic", "bearer", "negotiate"]);
        assert_eq!(all[0].param("realm"), Some("a, b"));
        assert_eq!(all[1].param("service"), Some("s"));
        assert!(all[2].params.is_empty());
    }

    #[test]
    fn several_header_values() {
        let all = parse_challenges([r#"Basic realm="x""#, r#"Bearer realm="y""#]);
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].param("realm"), Some("y"));
    }

    #[test]
    fn escaped_quotes_and_backslashes_in_quoted_values() {
        let challenge = one(r#"Basic realm="say \"hi\" \\ bye""#);
        assert_eq!(challenge.param("realm"), Some(r#"say "hi" \ bye"#));
    }

    #[test]
    fn token68_payload() {
        let challenge = one("Negotiate abc123==");
        assert_eq!(challenge.params, vec![(String::new(), "abc123==".into())]);
    }

    #[test]
    fn unterminated_quotes_and_garbage_do_not_panic() {
        let challenge = one(r#"Bearer realm="https://x/token"#);
        assert_eq!(challenge.param("realm"), Some("https://x/token"));
        for junk in [
            "",
            ",,,",
            "=",
            "\"",
            "Bearer =,=",
            "Basic realm=",
            "Bearer ,realm=\"x\"",
        ] {
            let _ = parse_challenges([junk]);
        }
        let after_junk = parse_challenges([r#"@@@, Basic realm="r""#]);
        assert_eq!(after_junk.last().map(|c| c.scheme.as_str()), Some("basic"));
    }
}
