//! Accounts: sign-up (a person and the team they found), sign-in (throttled per account and
//! per address), invitations, and who a signed-in person is. Sessions themselves belong to
//! the web edge; this module only says whether a person may have one.

use crate::{present, Berth, Error, Result};
use domain::{Email, NewPassword, TeamHandle, TeamName};
use store::{NewAccount, Store, User};
use views::{AppError, FieldExt, InviteInfo, Viewer};

/// Who may create an account with `/signup` (`BERTH_SIGNUP`). In every mode the very first
/// account of a new install may sign up (someone has to), and invited people join through
/// their invitation link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SignUpPolicy {
    /// Only the first account; later people join by invitation or `berth user create`.
    #[default]
    Closed,
    /// Only with an invitation link (`/signup?invite=…`): the invited person chooses their
    /// password and founds a team of their own too.
    Invite,
    /// Anyone. The answer never says whether the address already had an account.
    Open,
}

impl SignUpPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            SignUpPolicy::Closed => "closed",
            SignUpPolicy::Invite => "invite",
            SignUpPolicy::Open => "open",
        }
    }
}

impl std::str::FromStr for SignUpPolicy {
    type Err = String;

    fn from_str(value: &str) -> std::result::Result<Self, String> {
        match value {
            "closed" => Ok(SignUpPolicy::Closed),
            "invite" => Ok(SignUpPolicy::Invite),
            "open" => Ok(SignUpPolicy::Open),
            other => Err(format!(
                "\"{other}\" is not a sign-up mode; use closed, invite or open"
            )),
        }
    }
}

/// How accounts are made and guarded in this process.
#[derive(Debug, Default)]
pub struct AccountSettings {
    pub sign_up: SignUpPolicy,
    pub throttles: crate::throttle::Throttles,
    /// Whose `X-Forwarded-For` names the client (`BERTH_TRUSTED_PROXIES`).
    pub trusted_proxies: crate::client_ip::TrustedProxies,
    /// The SMTP server (`BERTH_SMTP_URL`): with one, open sign-up proves the address by
    /// e-mail before the account exists.
    pub mailer: Option<crate::mail::Mailer>,
}

/// Confirmation mails one address may receive an hour, whoever asks for them.
const CONFIRMATION_MAILS_PER_HOUR: i64 = 3;

/// What sign-up asks for.
pub struct SignUp<'a> {
    pub email: &'a str,
    pub password: &'a str,
    pub team_name: &'a str,
    pub team_handle: &'a str,
    /// The invitation token (`/signup?invite=…`), when there is one.
    pub invite: Option<&'a str>,
}

/// How sign-up ended.
#[derive(Debug)]
pub enum SignedUp {
    /// The account exists and the person may be signed in at once: the first account of an
    /// install, or an invited person (the address is the invitation's, so nothing is
    /// revealed). Carries the new team's handle.
    SignedIn(User, TeamHandle),
    /// Open sign-up: the person signs in next. The same answer whether the address was new
    /// (the account and team now exist) or already had an account (nothing changed), so
    /// sign-up does not tell anyone which addresses have accounts.
    SignInNext,
    /// Open sign-up with e-mail verification: a link went to the address (or, when it has
    /// an account already, a note saying so). The same answer either way.
    CheckEmail,
}

/// What the sign-up page says applies.
pub async fn sign_up_mode(berth: &Berth) -> Result<views::SignUpMode> {
    let first_account = !berth.store.has_users().await?;
    Ok(views::SignUpMode {
        policy: berth.accounts.sign_up.as_str().to_owned(),
        first_account,
        confirms_email: berth.accounts.sign_up == SignUpPolicy::Open
            && berth.accounts.mailer.is_some(),
    })
}

fn sign_up_closed() -> Error {
    AppError::Forbidden {
        message: "Sign-up is closed on this server. Ask a team owner to invite you, or an \
                  administrator to create your account with `berth user create`."
            .into(),
    }
    .into()
}

/// Creates an account and the team it owns, as `BERTH_SIGNUP` allows, for the client at
/// `ip` (sign-ups are throttled per address).
pub async fn sign_up(berth: &Berth, input: SignUp<'_>, ip: &str) -> Result<SignedUp> {
    // Every field is checked before answering, so that the form shows all its problems at once.
    let mut problems = views::Problems::default();
    let email = problems.check(Email::parse(input.email), "email");
    let password = problems.check(NewPassword::parse(input.password), "password");
    let team_name = problems.check(TeamName::parse(input.team_name), "team_name");
    // Left empty, the handle is made from the team's name ("Acme Corp" → "acme-corp").
    let typed_handle = input.team_handle.trim();
    let team_handle = if typed_handle.is_empty() {
        let suggested = team_name
            .as_ref()
            .and_then(|name| domain::handle_suggestion(name.as_str()))
            .and_then(|h| TeamHandle::parse(&h).ok());
        if suggested.is_none() && team_name.is_some() {
            problems.add(
                "team_handle",
                "Choose a handle for the team, e.g. \"acme\"; it appears in URLs.",
            );
        }
        suggested
    } else {
        problems.check(TeamHandle::parse(typed_handle), "team_handle")
    };
    problems.finish()?;
    let (Some(email), Some(password), Some(team_name), Some(team_handle)) =
        (email, password, team_name, team_handle)
    else {
        return Err(Error::unchecked("sign-up"));
    };
    berth.accounts.throttles.sign_up.check(ip)?;
    let handle_taken = |e: Error| match e {
        Error::Refused(AppError::Conflict { field, message }) if field == "handle" => {
            Error::conflict("team_handle", message)
        }
        other => other,
    };
    let invite = input.invite.map(str::trim).filter(|t| !t.is_empty());
    if berth.accounts.sign_up != SignUpPolicy::Open && !berth.store.has_users().await? {
        let hash = crate::passwords::hash(&password).await?;
        if let Some((user, _)) = berth
            .store
            .create_first_account(NewAccount {
                email: &email,
                password_hash: &hash,
                team_handle: &team_handle,
                team_name: &team_name,
            })
            .await
            .map_err(|e| handle_taken(e.into()))?
        {
            tracing::info!(user_id = user.id, team = %team_handle, "first account created");
            return Ok(SignedUp::SignedIn(user, team_handle));
        }
    }
    match berth.accounts.sign_up {
        SignUpPolicy::Closed => Err(sign_up_closed()),
        SignUpPolicy::Invite => {
            let Some(token) = invite else {
                return Err(AppError::Forbidden {
                    message: "Sign-up on this server is by invitation: open the link a team \
                              owner gave you."
                        .into(),
                }
                .into());
            };
            let invitation = berth
                .store
                .invite(token)
                .await?
                .ok_or_else(invite_used_up)?;
            if invitation.email != email.as_str() {
                return Err(Error::invalid(
                    "email",
                    format!(
                        "This invitation is for {}; sign up with that address.",
                        invitation.email
                    ),
                ));
            }
            let hash = crate::passwords::hash(&password).await?;
            let user = berth
                .store
                .accept_invite_founding(token, &hash, Some((&team_handle, &team_name)))
                .await
                .map_err(|e| match e {
                    store::StoreError::NotFound => invite_used_up(),
                    other => handle_taken(other.into()),
                })?;
            tracing::info!(user_id = user.id, team = %team_handle, "account created by invitation");
            Ok(SignedUp::SignedIn(user, team_handle))
        }
        SignUpPolicy::Open if berth.accounts.mailer.is_some() => {
            let hash = crate::passwords::hash(&password).await?;
            if berth.store.team_handle_taken(&team_handle).await? {
                return Err(handle_taken(
                    store::StoreError::Taken { what: "handle" }.into(),
                ));
            }
            send_confirmation(
                berth,
                NewAccount {
                    email: &email,
                    password_hash: &hash,
                    team_handle: &team_handle,
                    team_name: &team_name,
                },
            )
            .await?;
            Ok(SignedUp::CheckEmail)
        }
        SignUpPolicy::Open => {
            // The same work either way (one Argon2 hash, one attempt to insert), and the
            // same answer: an existing address is not told apart from a new one.
            let hash = crate::passwords::hash(&password).await?;
            let created = berth
                .store
                .create_account(NewAccount {
                    email: &email,
                    password_hash: &hash,
                    team_handle: &team_handle,
                    team_name: &team_name,
                })
                .await;
            match created {
                Ok((user, _)) => {
                    tracing::info!(user_id = user.id, team = %team_handle, "account created");
                    Ok(SignedUp::SignInNext)
                }
                Err(store::StoreError::Taken { what: "email" }) => {
                    if berth.store.team_handle_taken(&team_handle).await? {
                        return Err(handle_taken(
                            store::StoreError::Taken { what: "handle" }.into(),
                        ));
                    }
                    tracing::info!("sign-up for an address that has an account; nothing changed");
                    Ok(SignedUp::SignInNext)
                }
                Err(other) => Err(handle_taken(other.into())),
            }
        }
    }
}

/// Records a sign-up and mails its address: the confirmation link, or, when the address has
/// an account already, a note saying so (the person asking is told the same either way).
/// An address gets at most a few such mails an hour; beyond that nothing is sent, silently.
async fn send_confirmation(berth: &Berth, account: NewAccount<'_>) -> Result<()> {
    let Some(mailer) = &berth.accounts.mailer else {
        return Err(Error::internal("sign-up confirmation without a mailer"));
    };
    let email = account.email;
    let hour_ago = store::now_ms() - 60 * 60 * 1000;
    if berth.store.pending_sign_ups_since(email, hour_ago).await? >= CONFIRMATION_MAILS_PER_HOUR {
        tracing::warn!(email = %email, "sign-up confirmation not sent: too many for this address this hour");
        return Ok(());
    }
    let existing = berth.store.user_by_email(email).await?;
    let team = format!(
        "{} ({})",
        account.team_name.as_str(),
        account.team_handle.as_str()
    );
    // Recorded in both cases, so that the hourly limit counts every mail to the address.
    let token = berth.store.create_pending_sign_up(account).await?;
    let base = &berth.public_url;
    let (subject, body) = match existing {
        None => (
            "Confirm your Berth account",
            format!(
                "Someone, hopefully you, signed up for Berth at {base} with this address, to \
                 create the team {team}.\n\n\
                 To finish, open this link within 24 hours and enter the password chosen at \
                 sign-up:\n\n{base}/signup/confirm/{token}\n\n\
                 If it was not you, ignore this message: no account is made without the link.\n"
            ),
        ),
        Some(_) => (
            "Someone tried to sign up for Berth with your address",
            format!(
                "Someone, perhaps you, tried to sign up for Berth at {base} with this address, \
                 which already has an account. Nothing was changed.\n\n\
                 To use your account, sign in at {base}/signin. If a team owner invited you and \
                 you have not chosen a password yet, open the invitation link they gave you.\n\n\
                 If it was not you, ignore this message.\n"
            ),
        ),
    };
    mailer.send(email, subject, body).await?;
    tracing::info!(email = %email, "sign-up confirmation mailed");
    Ok(())
}

/// What a confirmation link is for: the address and the team the sign-up asked for.
pub async fn pending_sign_up(berth: &Berth, token: &str) -> Result<views::PendingSignUpInfo> {
    let pending = berth
        .store
        .pending_sign_up(token)
        .await?
        .ok_or_else(Error::not_found)?;
    Ok(views::PendingSignUpInfo {
        email: pending.email,
        team_name: pending.team_name,
        team_handle: pending.team_handle,
    })
}

fn confirmation_used_up() -> Error {
    Error::invalid(
        "token",
        "This confirmation link is used up or has expired; sign up again for a new one.",
    )
}

/// Finishes a sign-up from its e-mailed link, for the client at `ip`: the password must be
/// the one chosen at sign-up (so a link that someone else's sign-up sent to your address
/// cannot make an account they know the password of). Wrong passwords count as failed
/// sign-ins for the address. Answers the new person and their team's handle.
pub async fn confirm_sign_up(
    berth: &Berth,
    token: &str,
    password: &str,
    ip: &str,
) -> Result<(User, String)> {
    let pending = berth
        .store
        .pending_sign_up(token)
        .await?
        .ok_or_else(confirmation_used_up)?;
    if let Err(throttled) = berth
        .store
        .check_sign_in_allowed(&pending.email, ip, berth.sign_in_limits)
        .await?
    {
        return Err(AppError::Throttled {
            message: "Too many wrong passwords. Wait a while and try again.".into(),
            retry_after_secs: throttled.retry_after_secs,
        }
        .into());
    }
    let ok = crate::passwords::verify(password, Some(&pending.password_hash)).await?;
    berth.store.record_sign_in(&pending.email, ip, ok).await?;
    if !ok {
        return Err(Error::invalid(
            "password",
            "That is not the password chosen when signing up with this address.",
        ));
    }
    let (user, _) = berth
        .store
        .complete_sign_up(token)
        .await
        .map_err(|e| match e {
            store::StoreError::NotFound => confirmation_used_up(),
            store::StoreError::Taken { what: "email" } => Error::conflict(
                "email",
                "This address has an account already: sign in instead.",
            ),
            store::StoreError::Taken { what: "handle" } => Error::conflict(
                "team_handle",
                format!(
                    "The team handle {} was taken meanwhile; sign up again with another.",
                    pending.team_handle
                ),
            ),
            other => other.into(),
        })?;
    tracing::info!(user_id = user.id, team = %pending.team_handle, "account created from a confirmed sign-up");
    Ok((user, pending.team_handle))
}

/// Creates a person with a password who owns a new team (`berth user create`).
pub async fn create_account(
    store: &Store,
    email: &Email,
    password: &NewPassword,
    team_handle: &TeamHandle,
    team_name: &TeamName,
) -> Result<User> {
    let hash = crate::passwords::hash(password).await?;
    let (user, _) = store
        .create_account(NewAccount {
            email,
            password_hash: &hash,
            team_handle,
            team_name,
        })
        .await?;
    Ok(user)
}

/// Lets `email` sign in again from everywhere at once (`berth user unlock`): forgets its
/// failed sign-ins. Answers how many were forgotten.
pub async fn unlock(store: &Store, email: &Email) -> Result<u64> {
    Ok(store.clear_failed_sign_ins(email.as_str()).await?)
}

/// Checks an e-mail and password, from the client at `ip`. Too many failures for the
/// account from this address, or from this address for any account, refuse further tries
/// for a while (someone guessing elsewhere does not lock the owner out).
pub async fn sign_in(berth: &Berth, email: &str, password: &str, ip: &str) -> Result<User> {
    let email = Email::parse(email).field("email")?;
    if let Err(throttled) = berth
        .store
        .check_sign_in_allowed(email.as_str(), ip, berth.sign_in_limits)
        .await?
    {
        let minutes = (throttled.retry_after_secs + 59) / 60;
        tracing::warn!(email = %email, ip = %ip, "sign-in throttled");
        return Err(AppError::Throttled {
            message: format!(
                "Too many failed sign-ins. Wait {minutes} minute{} and try again.",
                if minutes == 1 { "" } else { "s" }
            ),
            retry_after_secs: throttled.retry_after_secs,
        }
        .into());
    }
    let user = berth.store.user_by_email(&email).await?;
    let ok = crate::passwords::verify(
        password,
        user.as_ref().and_then(|u| u.password_hash.as_deref()),
    )
    .await?;
    berth.store.record_sign_in(email.as_str(), ip, ok).await?;
    match user {
        Some(user) if ok => {
            tracing::info!(user_id = user.id, "signed in");
            Ok(user)
        }
        _ => Err(Error::invalid(
            "password",
            "That e-mail and password do not match an account.",
        )),
    }
}

/// The person with this id, if the account still exists.
pub async fn user(berth: &Berth, user_id: i64) -> Result<Option<User>> {
    Ok(berth.store.user(user_id).await?)
}

/// A signed-in person and their teams, read together once per request: the frame of every
/// page shows the teams, so the person is not read without them.
#[derive(Clone, Debug)]
pub struct SignedIn {
    pub user: User,
    teams: Vec<store::TeamAccess>,
}

impl SignedIn {
    /// Their standing in the team with this handle, if they belong to it.
    pub fn team(&self, handle: &str) -> Option<&store::TeamAccess> {
        self.teams.iter().find(|team| team.handle == handle)
    }

    /// What the page frame shows of them.
    pub fn viewer(&self) -> Viewer {
        Viewer {
            user_id: self.user.id,
            email: self.user.email.clone(),
            teams: self.teams.iter().map(present::team).collect(),
        }
    }
}

/// The person with this id and their teams, if the account still exists.
pub async fn signed_in(berth: &Berth, user_id: i64) -> Result<Option<SignedIn>> {
    Ok(berth
        .store
        .user_with_teams(user_id)
        .await?
        .map(|(user, teams)| SignedIn { user, teams }))
}

/// Who is signed in, with their teams and roles (what every page's frame shows; the
/// invitations waiting for them are read only where they are shown, [`invitations`]).
pub async fn viewer(berth: &Berth, user: User) -> Result<Viewer> {
    let teams = berth.store.teams_of(user.id).await?;
    Ok(Viewer {
        user_id: user.id,
        email: user.email,
        teams: teams.iter().map(present::team).collect(),
    })
}

/// What an invitation link is for: the address and the team.
pub async fn invite(berth: &Berth, token: &str) -> Result<InviteInfo> {
    let invite = berth
        .store
        .invite(token)
        .await?
        .ok_or_else(Error::not_found)?;
    Ok(InviteInfo {
        email: invite.email,
        team_name: invite.team_name,
        team_handle: invite.team_handle,
        role: invite
            .role
            .as_deref()
            .and_then(|r| r.parse::<domain::Role>().ok()),
    })
}

fn invite_used_up() -> Error {
    Error::invalid(
        "token",
        "This invitation link is used up or has expired; ask an owner for a new one.",
    )
}

/// Accepts an invitation by choosing a password; answers the person and the handle of the
/// team they joined. A link never resets the password of an account that has one.
pub async fn accept_invite(berth: &Berth, token: &str, password: &str) -> Result<(User, String)> {
    let password = NewPassword::parse(password).field("password")?;
    let invite = berth
        .store
        .invite(token)
        .await?
        .ok_or_else(invite_used_up)?;
    let hash = crate::passwords::hash(&password).await?;
    let user = berth
        .store
        .accept_invite(token, &hash)
        .await
        .map_err(|e| match e {
            store::StoreError::NotFound => invite_used_up(),
            other => other.into(),
        })?;
    Ok((user, invite.team_handle))
}

/// A new API token for the person with `email` (for the command line): the token, shown
/// once.
pub async fn create_token_for(store: &Store, email: &Email, name: &str) -> Result<String> {
    let user = store
        .user_by_email(email)
        .await?
        .ok_or_else(|| Error::invalid("email", format!("no user {email}")))?;
    let (_, token) = crate::tokens::create(store, user.id, name).await?;
    Ok(token)
}

/// The invitations to teams `user_id` has not answered yet.
pub async fn invitations(berth: &Berth, user_id: i64) -> Result<Vec<views::PendingInvitation>> {
    Ok(berth
        .store
        .membership_invitations(user_id)
        .await?
        .into_iter()
        .map(|i| views::PendingInvitation {
            id: i.id,
            team_handle: i.team_handle,
            team_name: i.team_name,
            role: i.role,
            invited_by: i.invited_by,
            created_at: i.created_at,
        })
        .collect())
}

/// Accepts (joins the team) or declines invitation `id`; answers the team's handle. Only the
/// invited person can answer; anyone else's invitation is "not found".
pub async fn answer_invitation(
    berth: &Berth,
    user_id: i64,
    id: i64,
    accept: bool,
) -> Result<String> {
    let handle = berth
        .store
        .respond_to_invitation(user_id, id, accept)
        .await
        .map_err(|e| match e {
            store::StoreError::NotFound => Error::not_found(),
            store::StoreError::Taken { .. } => {
                Error::conflict("invitation", "You are already a member of this team.")
            }
            other => other.into(),
        })?;
    tracing::info!(user_id, team = %handle, accept, "invitation answered");
    Ok(handle)
}
