//! Ed25519 identity: this machine's key on disk (mode 0600), and the challenge signature that
//! proves it to a server.
//!
//! The signed message binds the server id, the nonce, the session handle and the session kind,
//! with a domain prefix, so a captured signature is useless on another server, for another
//! session, or for anything that is not a conclave login.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use super::names::Name;
use super::protocol::SessionKind;

/// File name of the private key inside the config directory.
pub const KEY_FILE: &str = "key";

/// Prefix of printed public keys, so a key pasted into the wrong place is recognisable.
const PUBLIC_KEY_PREFIX: &str = "ed25519:";

/// Separates conclave login signatures from any other use of the same key.
const AUTH_DOMAIN: &[u8] = b"conclave-auth-v1\0";

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("no key in {0}: run `conclave key` first")]
    Missing(PathBuf),
    #[error("key file {path} is readable by others (mode {mode:o}); run `chmod 600 {path}`")]
    LoosePermissions { path: PathBuf, mode: u32 },
    #[error("key file {0} is damaged: expected one line of base64 holding 32 bytes")]
    Damaged(PathBuf),
    #[error("cannot access key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{0}` is not a public key: expected `ed25519:` followed by 43 base64 characters")]
    BadPublicKey(String),
    #[error("cannot read randomness from the operating system: {0}")]
    Random(String),
}

/// Fills `buf` from the operating system's randomness.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), IdentityError> {
    getrandom::fill(buf).map_err(|e| IdentityError::Random(e.to_string()))
}

/// This machine's keypair.
pub struct Identity {
    signing: SigningKey,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret half.
        write!(f, "Identity({})", self.public_key_string())
    }
}

impl Identity {
    /// A fresh key that lives only in memory (tests, benchmarks).
    pub fn generate() -> Result<Self, IdentityError> {
        let mut seed = [0u8; 32];
        random_bytes(&mut seed)?;
        Ok(Self {
            signing: SigningKey::from_bytes(&seed),
        })
    }

    /// Loads the key from `dir`, failing with a hint when there is none.
    pub fn load(dir: &Path) -> Result<Self, IdentityError> {
        let path = dir.join(KEY_FILE);
        let io = |source| IdentityError::Io {
            path: path.clone(),
            source,
        };
        let meta = match fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(IdentityError::Missing(dir.to_path_buf()));
            }
            Err(e) => return Err(io(e)),
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(IdentityError::LoosePermissions { path, mode });
        }
        let text = fs::read_to_string(&path).map_err(io)?;
        let seed: [u8; 32] = STANDARD_NO_PAD
            .decode(text.trim().trim_end_matches('='))
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| IdentityError::Damaged(path.clone()))?;
        Ok(Self {
            signing: SigningKey::from_bytes(&seed),
        })
    }

    /// Loads the key from `dir`, creating it (and the directory) on first use. The flag says
    /// whether it was created now.
    pub fn load_or_create(dir: &Path) -> Result<(Self, bool), IdentityError> {
        match Self::load(dir) {
            Err(IdentityError::Missing(_)) => {}
            other => return other.map(|id| (id, false)),
        }
        let identity = Self::generate()?;
        identity.save(dir)?;
        Ok((identity, true))
    }

    /// Writes the key to `dir` with mode 0600, never replacing an existing one.
    fn save(&self, dir: &Path) -> Result<(), IdentityError> {
        let path = dir.join(KEY_FILE);
        let io = |source| IdentityError::Io {
            path: path.clone(),
            source,
        };
        fs::create_dir_all(dir).map_err(io)?;
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        let line = STANDARD_NO_PAD.encode(self.signing.to_bytes());
        file.write_all(format!("{line}\n").as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io)
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// The public key as people copy it: `ed25519:<base64>`.
    pub fn public_key_string(&self) -> String {
        format_public_key(&self.public_key())
    }

    /// A key from its 32 secret bytes.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self {
            signing: SigningKey::from_bytes(seed),
        }
    }

    /// The 32 secret bytes (to seal them under a passphrase; never to print).
    pub fn seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// Signs `message` (build it with `signed_message`, under a domain of its own).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    /// Signs a server's challenge for one session.
    pub fn sign_challenge(
        &self,
        server_id: &str,
        nonce: &[u8],
        handle: &Name,
        kind: SessionKind,
    ) -> [u8; 64] {
        let message = challenge_message(server_id, nonce, handle, kind);
        self.signing.sign(&message).to_bytes()
    }
}

pub fn format_public_key(key: &[u8; 32]) -> String {
    format!("{PUBLIC_KEY_PREFIX}{}", STANDARD_NO_PAD.encode(key))
}

/// Parses a key as `conclave key` prints it.
pub fn parse_public_key(text: &str) -> Result<[u8; 32], IdentityError> {
    let bad = || IdentityError::BadPublicKey(text.to_owned());
    let b64 = text
        .trim()
        .strip_prefix(PUBLIC_KEY_PREFIX)
        .ok_or_else(bad)?;
    let bytes = STANDARD_NO_PAD
        .decode(b64.trim_end_matches('='))
        .map_err(|_| bad())?;
    let key: [u8; 32] = bytes.try_into().map_err(|_| bad())?;
    VerifyingKey::from_bytes(&key).map_err(|_| bad())?;
    Ok(key)
}

/// `domain` followed by every part length-prefixed, so no two different inputs can produce
/// the same message.
pub fn signed_message(domain: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut message = domain.to_vec();
    for part in parts {
        message.extend_from_slice(&(part.len() as u32).to_be_bytes());
        message.extend_from_slice(part);
    }
    message
}

/// The exact bytes a client signs to log in.
fn challenge_message(server_id: &str, nonce: &[u8], handle: &Name, kind: SessionKind) -> Vec<u8> {
    signed_message(
        AUTH_DOMAIN,
        &[
            server_id.as_bytes(),
            nonce,
            handle.as_str().as_bytes(),
            kind.to_string().as_bytes(),
        ],
    )
}

/// Checks an Ed25519 signature of `message` by `public_key` (strictly: no malleable forms).
pub fn verify(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let Ok(key_bytes) = <[u8; 32]>::try_from(public_key) else {
        return false;
    };
    let Ok(sig_bytes) = <[u8; 64]>::try_from(signature) else {
        return false;
    };
    let Ok(key) = VerifyingKey::from_bytes(&key_bytes) else {
        return false;
    };
    key.verify_strict(message, &Signature::from_bytes(&sig_bytes))
        .is_ok()
}

/// Checks a challenge signature; `true` only for the exact server, nonce, handle and kind.
pub fn verify_challenge(
    public_key: &[u8],
    signature: &[u8],
    server_id: &str,
    nonce: &[u8],
    handle: &Name,
    kind: SessionKind,
) -> bool {
    verify(
        public_key,
        &challenge_message(server_id, nonce, handle, kind),
        signature,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn handle(s: &str) -> Name {
        Name::handle(s).unwrap()
    }

    #[test]
    fn signature_verifies_only_for_its_server_session_and_kind() {
        let id = Identity::generate().unwrap();
        let nonce = [7u8; 32];
        let sig = id.sign_challenge("server-a", &nonce, &handle("tui"), SessionKind::Human);
        let pk = id.public_key();
        assert!(verify_challenge(
            &pk,
            &sig,
            "server-a",
            &nonce,
            &handle("tui"),
            SessionKind::Human
        ));
        assert!(!verify_challenge(
            &pk,
            &sig,
            "server-b",
            &nonce,
            &handle("tui"),
            SessionKind::Human
        ));
        assert!(!verify_challenge(
            &pk,
            &sig,
            "server-a",
            &nonce,
            &handle("bot"),
            SessionKind::Human
        ));
        assert!(!verify_challenge(
            &pk,
            &sig,
            "server-a",
            &nonce,
            &handle("tui"),
            SessionKind::Agent
        ));
        assert!(!verify_challenge(
            &pk,
            &sig,
            "server-a",
            &[8u8; 32],
            &handle("tui"),
            SessionKind::Human
        ));
        let other = Identity::generate().unwrap().public_key();
        assert!(!verify_challenge(
            &other,
            &sig,
            "server-a",
            &nonce,
            &handle("tui"),
            SessionKind::Human
        ));
        assert!(!verify_challenge(
            &pk[..31],
            &sig,
            "server-a",
            &nonce,
            &handle("tui"),
            SessionKind::Human
        ));
        assert!(!verify_challenge(
            &pk,
            &sig[..63],
            "server-a",
            &nonce,
            &handle("tui"),
            SessionKind::Human
        ));
    }

    #[test]
    fn length_prefixes_keep_parts_from_sliding() {
        // "ab" + "c" and "a" + "bc" must sign differently.
        let a = challenge_message("ab", b"c", &handle("x"), SessionKind::Human);
        let b = challenge_message("a", b"bc", &handle("x"), SessionKind::Human);
        assert_ne!(a, b);
    }

    #[test]
    fn key_is_created_once_with_mode_0600_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("conf");
        let (first, created) = Identity::load_or_create(&sub).unwrap();
        assert!(created);
        let mode = fs::metadata(sub.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let (again, created) = Identity::load_or_create(&sub).unwrap();
        assert!(!created);
        assert_eq!(first.public_key(), again.public_key());
    }

    #[test]
    fn loose_or_damaged_key_files_are_refused_with_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Identity::load(dir.path()),
            Err(IdentityError::Missing(_))
        ));
        Identity::load_or_create(dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let e = Identity::load(dir.path()).unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
        fs::write(&path, "not a key\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            Identity::load(dir.path()),
            Err(IdentityError::Damaged(_))
        ));
    }

    #[test]
    fn public_keys_print_and_parse() {
        let id = Identity::generate().unwrap();
        let text = id.public_key_string();
        assert!(text.starts_with("ed25519:"));
        assert_eq!(parse_public_key(&text).unwrap(), id.public_key());
        assert!(parse_public_key("ssh-ed25519 AAAA").is_err());
        assert!(parse_public_key("ed25519:AAAA").is_err());
    }
}
