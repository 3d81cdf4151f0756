//! E-mail that Berth sends (`BERTH_SMTP_URL`, `BERTH_SMTP_FROM`): today the link that
//! proves a sign-up's address. Plain text, one message per call, over SMTP with lettre.

use crate::{Error, Result};
use domain::Email;
use lettre::{
    message::{header::ContentType, Mailbox},
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};
use std::time::Duration;

/// How long one message may take (connecting, greeting, sending).
const SEND_TIMEOUT: Duration = Duration::from_secs(15);

/// Sends mail through the operator's SMTP server.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// `host:port` of the server, for logs (the URL may carry a password).
    server: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("server", &self.server)
            .field("from", &self.from.to_string())
            .finish()
    }
}

impl Mailer {
    /// A mailer for `url` (`smtp://host:port` in plain text, `smtp://host?tls=required` with
    /// STARTTLS, `smtps://user:password@host` over TLS) sending as `from`
    /// (`Berth <berth@example.com>` or a bare address). The error says which of the two is
    /// wrong and how, without repeating the URL, which may hold a password.
    pub fn new(url: &str, from: &str) -> std::result::Result<Self, MailSettingError> {
        let from: Mailbox = from.parse().map_err(|e| {
            MailSettingError::From(format!(
                "\"{from}\" is not a sender address ({e}); use e.g. Berth <berth@example.com>"
            ))
        })?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| {
                MailSettingError::Url(format!(
                    "not an SMTP URL ({e}); use smtp://host:25, smtp://host:587?tls=required or \
                     smtps://user:password@host:465"
                ))
            })?
            .timeout(Some(SEND_TIMEOUT))
            .build();
        Ok(Self {
            transport,
            from,
            server: server_of(url),
        })
    }

    /// Sends a plain-text message to `to`. A failure is logged with the server's answer and
    /// reaches the person as "could not send", without details of the mail server.
    pub async fn send(&self, to: &Email, subject: &str, body: String) -> Result<()> {
        let to: Mailbox = to
            .as_str()
            .parse()
            .map_err(|e| Error::internal(format!("address {to} does not make a mailbox: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| Error::internal(format!("cannot build the message: {e}")))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::error!(server = %self.server, error = %e, "sending e-mail failed");
                Err(views::AppError::Unavailable {
                    message: "Berth could not send the e-mail just now. Try again in a few \
                              minutes; if it keeps failing, tell the administrator."
                        .into(),
                }
                .into())
            }
        }
    }
}

/// Which mail setting is wrong, and how.
#[derive(Debug, PartialEq, Eq)]
pub enum MailSettingError {
    /// The SMTP URL.
    Url(String),
    /// The sender address.
    From(String),
}

/// `host[:port]` of an SMTP URL, without user name, password or parameters.
fn server_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_logged_server_never_carries_the_password() {
        assert_eq!(
            server_of("smtps://bot:hunter2@mail.example.com:465"),
            "mail.example.com:465"
        );
        assert_eq!(
            server_of("smtp://127.0.0.1:2525?tls=required"),
            "127.0.0.1:2525"
        );
        let mailer =
            Mailer::new("smtps://bot:hunter2@mail.example.com", "berth@example.com").unwrap();
        assert!(!format!("{mailer:?}").contains("hunter2"));
    }

    #[test]
    fn bad_settings_say_what_to_write_without_echoing_the_url() {
        let Err(MailSettingError::Url(error)) =
            Mailer::new("ftp://bot:hunter2@mail.example.com", "berth@example.com")
        else {
            panic!("an ftp URL was taken for an SMTP server");
        };
        assert!(error.contains("smtp://host:25"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
        let Err(MailSettingError::From(error)) =
            Mailer::new("smtp://127.0.0.1:25", "not an address")
        else {
            panic!("a sender that is not an address was taken");
        };
        assert!(error.contains("sender address"), "{error}");
    }
}
