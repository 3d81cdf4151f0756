//! The parts of an AWS ECR credential that people type: an access key id, a region, a role
//! to assume (and its external id), and the ECR registry host the key is for.
//!
//! Each is checked strictly: the region becomes part of the host name Berth signs requests
//! for (`api.ecr.{region}.amazonaws.com`), so nothing but AWS's own shape may pass.

use crate::{ParseError, RegistryHost};
use serde::{Deserialize, Serialize};

/// An AWS access key id: `AKIA…` (a user's key) or `ASIA…` (temporary), 16 to 128
/// upper-case letters and digits.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AwsAccessKeyId(String);

crate::parsed_string!(AwsAccessKeyId);

impl AwsAccessKeyId {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let value = input.trim();
        if value.is_empty() {
            return Err(ParseError::new(
                "Enter the AWS access key id, e.g. AKIAIOSFODNN7EXAMPLE (IAM → Users → Security credentials).",
            ));
        }
        if !(16..=128).contains(&value.len())
            || !value
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return Err(ParseError::new(
                "An AWS access key id is 16 to 128 upper-case letters and digits, e.g. AKIAIOSFODNN7EXAMPLE; the secret access key goes in its own field.",
            ));
        }
        Ok(Self(value.to_owned()))
    }
}

/// An AWS region, e.g. `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AwsRegion(String);

crate::parsed_string!(AwsRegion);

impl AwsRegion {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let value = input.trim();
        if value.is_empty() {
            return Err(ParseError::new(
                "Enter the AWS region of the registry, e.g. us-east-1.",
            ));
        }
        let parts: Vec<&str> = value.split('-').collect();
        let shaped = value.len() <= 32
            && parts.len() >= 3
            && parts[0].len() == 2
            && parts[..parts.len() - 1]
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
            && parts[parts.len() - 1].len() <= 2
            && !parts[parts.len() - 1].is_empty()
            && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit());
        if !shaped {
            return Err(ParseError::new(format!(
                "\"{value}\" is not an AWS region; use its code, e.g. us-east-1 or eu-west-2 (lower-case, as in the registry's host name)."
            )));
        }
        Ok(Self(value.to_owned()))
    }
}

/// The ARN of an IAM role Berth assumes before asking ECR for a token, e.g.
/// `arn:aws:iam::123456789012:role/berth-ecr-pull`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AwsRoleArn(String);

crate::parsed_string!(AwsRoleArn);

impl AwsRoleArn {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let value = input.trim();
        let invalid = || {
            ParseError::new(format!(
                "\"{value}\" is not an IAM role ARN; it looks like arn:aws:iam::123456789012:role/berth-ecr-pull."
            ))
        };
        let mut parts = value.splitn(6, ':');
        let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(invalid());
        };
        let partition_ok = partition.starts_with("aws")
            && partition
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'-');
        let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
        let role_ok = resource.strip_prefix("role/").is_some_and(|path| {
            !path.is_empty()
                && path.len() <= 512
                && path
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_/-".contains(&b))
        });
        if !(partition_ok && account_ok && role_ok) {
            return Err(invalid());
        }
        Ok(Self(value.to_owned()))
    }
}

/// The external id a role's trust policy may require (`sts:ExternalId`): 2 to 1224 of
/// letters, digits and `+=,.@:/-_`.
pub fn parse_external_id(input: &str) -> Result<Option<String>, ParseError> {
    let value = input.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if !(2..=1224).contains(&value.len())
        || !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@:/-_".contains(&b))
    {
        return Err(ParseError::new(
            "An external id is 2 to 1224 letters, digits and + = , . @ : / - _, exactly as the role's trust policy names it.",
        ));
    }
    Ok(Some(value.to_owned()))
}

/// The account and region in an ECR registry host, `{account}.dkr.ecr.{region}.amazonaws.com`
/// (or `.amazonaws.com.cn`), if it is one.
pub fn ecr_host_parts(host: &RegistryHost) -> Option<(&str, &str)> {
    let host = host.as_str();
    let rest = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
    let (account, rest) = rest.split_once(".dkr.ecr.")?;
    let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    (account_ok && AwsRegion::parse(rest).is_ok()).then_some((account, rest))
}

/// Checks that an `ecr` credential's registry is an ECR registry in its region, or one of
/// the operator's extra ECR-compatible hosts (`BERTH_ECR_REGISTRY_HOSTS`).
pub fn check_ecr_registry(
    host: &RegistryHost,
    region: &AwsRegion,
    extra_hosts: &[RegistryHost],
) -> Result<(), ParseError> {
    if extra_hosts.contains(host) {
        return Ok(());
    }
    match ecr_host_parts(host) {
        Some((_, host_region)) if host_region == region.as_str() => Ok(()),
        Some((account, host_region)) => Err(ParseError::new(format!(
            "{host} is in region {host_region}, but the credential names {region}; ECR tokens are per region, so use {host_region} or the registry {account}.dkr.ecr.{region}.amazonaws.com."
        ))),
        None => Err(ParseError::new(format!(
            "An ECR credential is for an ECR registry, ACCOUNT.dkr.ecr.REGION.amazonaws.com (e.g. 123456789012.dkr.ecr.{region}.amazonaws.com); {host} is not one. For other registries use kind basic."
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn regions_have_aws_shape() {
        for good in [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "cn-north-1",
            "ap-southeast-10",
        ] {
            assert!(AwsRegion::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "us",
            "US-EAST-1",
            "us-east",
            "us-east-1.evil.com",
            "us-east-1/",
            "useast-1-x",
            "us--1",
            "us-east-123",
        ] {
            assert!(AwsRegion::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn access_key_ids_and_role_arns() {
        assert!(AwsAccessKeyId::parse("AKIAIOSFODNN7EXAMPLE").is_ok());
        assert!(AwsAccessKeyId::parse("akiaiosfodnn7example").is_err());
        assert!(AwsAccessKeyId::parse("AKIA 1").is_err());
        assert!(AwsRoleArn::parse("arn:aws:iam::123456789012:role/berth-ecr-pull").is_ok());
        assert!(AwsRoleArn::parse("arn:aws-cn:iam::123456789012:role/path/to/x").is_ok());
        for bad in [
            "arn:aws:iam::123456789012:user/bob",
            "arn:aws:s3:::bucket",
            "arn:aws:iam::12345:role/x",
            "arn:aws:iam::123456789012:role/",
            "role/x",
        ] {
            assert!(AwsRoleArn::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_external_id("").unwrap(), None);
        assert!(parse_external_id("x").is_err());
        assert!(parse_external_id("a b").is_err());
        assert_eq!(
            parse_external_id("berth-acme").unwrap().as_deref(),
            Some("berth-acme")
        );
    }

    #[test]
    fn ecr_registries_are_checked_against_the_region() {
        let region = AwsRegion::parse("eu-west-1").unwrap();
        let host = |h: &str| RegistryHost::parse(h).unwrap();
        assert!(check_ecr_registry(
            &host("123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
            &region,
            &[]
        )
        .is_ok());
        let other = check_ecr_registry(
            &host("123456789012.dkr.ecr.us-east-1.amazonaws.com"),
            &region,
            &[],
        )
        .unwrap_err();
        assert!(
            other.message.contains("region us-east-1"),
            "{}",
            other.message
        );
        let not_ecr = check_ecr_registry(&host("ghcr.io"), &region, &[]).unwrap_err();
        assert!(
            not_ecr.message.contains("kind basic"),
            "{}",
            not_ecr.message
        );
        assert!(check_ecr_registry(&host("evil.com"), &region, &[]).is_err());
        assert!(check_ecr_registry(
            &host("123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.com"),
            &region,
            &[]
        )
        .is_err());
        assert!(
            check_ecr_registry(&host("127.0.0.1:5000"), &region, &[host("127.0.0.1:5000")]).is_ok()
        );
    }

    proptest! {
        /// A region that parses can only ever make an AWS host name.
        #[test]
        fn parsed_regions_are_host_labels(input in any::<String>()) {
            if let Ok(region) = AwsRegion::parse(&input) {
                prop_assert!(region.as_str().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
            }
        }
    }
}
