//! Which registry credentials pull an image: one rule, used by image deploys, Dockerfile
//! build plans (for every `FROM` registry), the base-image check, the "tag has moved" check
//! and the deploy form's "match by registry host".
//!
//! For a registry host, in order:
//! 1. what the deploy chose explicitly (a team credential by name, credentials typed with
//!    it, "remembered", "none");
//! 2. the team credential the app deploys with, when it is for that host;
//! 3. the credentials remembered for that host (an image app's remembered login; a
//!    Dockerfile app's `APTIBLE_PRIVATE_REGISTRY_*` configuration);
//! 4. the one team credential for that host; several are an error naming them (choose one
//!    by name); none means no credentials (a public image).

use crate::{credentials::team_login_or_refusal, Berth, Error, Result};
use domain::{CredentialName, CredentialSource, RegistryHost, Secret};
use platform::registry::BasicCredentials;
use store::{App, CredentialUse, RegistryCredential, Sealed, SecretSlot};

/// How a deploy asks for registry credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialChoice {
    /// Berth picks by the rule above.
    Auto,
    /// The credentials remembered on the app.
    Remembered,
    /// A team credential by name, or (`None`) the one for the image's registry host.
    Team(Option<CredentialName>),
    /// Typed with this deploy; `remember` keeps them on the app (replacing what it had).
    Given {
        username: String,
        password: Secret,
        remember: bool,
    },
    /// None: a public image.
    None,
}

/// What an app remembers for one registry.
enum Remembered {
    /// An image app's remembered login, still sealed.
    OnApp { username: String, sealed: Sealed },
    /// A Dockerfile app's `APTIBLE_PRIVATE_REGISTRY_USERNAME` / `_PASSWORD`.
    Configuration(BasicCredentials),
}

/// The credentials chosen for one registry, and where they came from.
// A few per deploy, moved rarely: boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Chosen {
    None,
    Team {
        credential: RegistryCredential,
        login: BasicCredentials,
        /// Chosen by the rule (or by host) rather than by name.
        matched: bool,
    },
    Remembered {
        login: BasicCredentials,
    },
    Given {
        login: BasicCredentials,
        remember: bool,
    },
}

impl Chosen {
    pub fn login(&self) -> Option<&BasicCredentials> {
        match self {
            Chosen::None => None,
            Chosen::Team { login, .. }
            | Chosen::Remembered { login }
            | Chosen::Given { login, .. } => Some(login),
        }
    }

    pub fn source(&self) -> CredentialSource {
        match self {
            Chosen::None => CredentialSource::None,
            Chosen::Team { .. } => CredentialSource::Team,
            Chosen::Remembered { .. } => CredentialSource::Remembered,
            Chosen::Given { .. } => CredentialSource::Given,
        }
    }

    pub fn team_credential(&self) -> Option<&RegistryCredential> {
        match self {
            Chosen::Team { credential, .. } => Some(credential),
            _ => None,
        }
    }

    /// What the operation records of it: never the secret.
    pub fn record(&self) -> CredentialUse {
        CredentialUse {
            source: self.source(),
            team_credential: self
                .team_credential()
                .map(|c| (c.id, c.name.to_string(), c.secret_version)),
            // The worker pulls with this username and the password sealed with the operation.
            registry_username: self.login().map(|l| l.username.clone()),
        }
    }

    /// How they were chosen, in words (for error messages).
    pub fn describe(&self) -> String {
        match self {
            Chosen::None => "Without credentials".into(),
            Chosen::Team {
                credential,
                matched,
                ..
            } => format!(
                "With team credential {}{}",
                credential.name,
                if *matched {
                    " (matched by registry host)"
                } else {
                    ""
                }
            ),
            Chosen::Remembered { login } => format!(
                "With the credentials remembered on the app (user {})",
                login.username
            ),
            Chosen::Given { login, .. } => {
                format!("With the credentials given (user {})", login.username)
            }
        }
    }
}

/// Chooses credentials for the registries one app pulls from.
pub struct Resolver<'a> {
    berth: &'a Berth,
    app: &'a App,
    /// The team's credentials, read once.
    team: Vec<RegistryCredential>,
    remembered: Option<(RegistryHost, Remembered)>,
}

impl<'a> Resolver<'a> {
    /// For an image app: its remembered credentials are the login remembered on the app.
    pub async fn for_image_app(berth: &'a Berth, app: &'a App) -> Result<Self> {
        let remembered = berth
            .store
            .remembered_secret(app.id)
            .await?
            .map(|(host, username, sealed)| (host, Remembered::OnApp { username, sealed }));
        Self::new(berth, app, remembered).await
    }

    /// For a Dockerfile build: its remembered credentials are the configuration's
    /// `APTIBLE_PRIVATE_REGISTRY_*` for `private_host`, when both are known.
    pub async fn for_build(
        berth: &'a Berth,
        app: &'a App,
        private: Option<(RegistryHost, BasicCredentials)>,
    ) -> Result<Self> {
        let remembered = private.map(|(host, login)| (host, Remembered::Configuration(login)));
        Self::new(berth, app, remembered).await
    }

    async fn new(
        berth: &'a Berth,
        app: &'a App,
        remembered: Option<(RegistryHost, Remembered)>,
    ) -> Result<Self> {
        let team = berth.store.credentials(app.team_id).await?;
        Ok(Self {
            berth,
            app,
            team,
            remembered,
        })
    }

    /// The team's credential named `name`, if it has one.
    pub fn team_credential(&self, name: &CredentialName) -> Option<&RegistryCredential> {
        self.team.iter().find(|c| &c.name == name)
    }

    /// Chooses, by the rule, the credentials that pull from `host`, and opens their secret.
    pub async fn choose(&self, host: &RegistryHost, choice: &CredentialChoice) -> Result<Chosen> {
        match choice {
            CredentialChoice::None => Ok(Chosen::None),
            CredentialChoice::Given {
                username,
                password,
                remember,
            } => Ok(Chosen::Given {
                login: BasicCredentials::new(username.clone(), password.clone()),
                remember: *remember,
            }),
            CredentialChoice::Team(Some(name)) => {
                let credential = self.team_credential(name).ok_or_else(|| {
                    Error::invalid(
                        "credential",
                        format!(
                            "This team has no credential named {name}; choose one from the list."
                        ),
                    )
                })?;
                if &credential.registry != host {
                    return Err(Error::invalid(
                        "credential",
                        format!(
                            "Credential {} is for {}, but the image is on {host}.",
                            credential.name, credential.registry
                        ),
                    ));
                }
                self.team(credential, false).await
            }
            CredentialChoice::Team(None) => match self.one_for_host(host)? {
                Some(credential) => self.team(credential, true).await,
                None => Err(Error::invalid(
                    "credential",
                    format!(
                        "No team credential is for {host}. Choose another option, or ask an owner to add one for {host}."
                    ),
                )),
            },
            CredentialChoice::Remembered => self.remembered(host)?.ok_or_else(|| {
                Error::invalid(
                    "credentials",
                    format!(
                        "This app has no remembered credentials for {host}; give credentials with this deploy."
                    ),
                )
            }),
            CredentialChoice::Auto => {
                if let Some(id) = self.app.team_credential_id {
                    if let Some(credential) =
                        self.team.iter().find(|c| c.id == id && &c.registry == host)
                    {
                        return self.team(credential, true).await;
                    }
                }
                if let Some(chosen) = self.remembered(host)? {
                    return Ok(chosen);
                }
                match self.one_for_host(host)? {
                    Some(credential) => self.team(credential, true).await,
                    None => Ok(Chosen::None),
                }
            }
        }
    }

    /// The one team credential for `host`; an error naming them when there are several.
    fn one_for_host(&self, host: &RegistryHost) -> Result<Option<&RegistryCredential>> {
        let for_host: Vec<&RegistryCredential> =
            self.team.iter().filter(|c| &c.registry == host).collect();
        match for_host.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one)),
            several => Err(Error::invalid(
                "credential",
                format!(
                    "Several team credentials are for {host} ({}); choose one by name.",
                    several
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }

    async fn team(&self, credential: &RegistryCredential, matched: bool) -> Result<Chosen> {
        Ok(Chosen::Team {
            login: team_login_or_refusal(self.berth, credential).await?,
            credential: credential.clone(),
            matched,
        })
    }

    fn remembered(&self, host: &RegistryHost) -> Result<Option<Chosen>> {
        let Some((remembered_host, remembered)) = &self.remembered else {
            return Ok(None);
        };
        if remembered_host != host {
            return Ok(None);
        }
        let login = match remembered {
            Remembered::OnApp { username, sealed } => {
                let secret = self
                    .berth
                    .secrets
                    .open(&SecretSlot::AppRemembered(self.app.id), sealed)?;
                BasicCredentials::new(username.clone(), secret)
            }
            Remembered::Configuration(login) => login.clone(),
        };
        Ok(Some(Chosen::Remembered { login }))
    }
}
