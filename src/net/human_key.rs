//! The human key: an opt-in second key of a machine, kept on disk only sealed under a
//! passphrase that the person types. Once a machine has one, the server lets `human` sessions
//! of that machine sign in only with it. An agent can read every file its user can, the
//! machine key included, but not the passphrase: it can no longer pose as the person, answer
//! permission requests, or raise its own autonomy.
//!
//! The file holds the public key, an Argon2id salt, and the secret key sealed with
//! ChaCha20-Poly1305 under the key Argon2id derives from the passphrase (the header and the
//! public key are authenticated with it).

use std::fs;
use std::io::{BufRead, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};

use super::identity::{Identity, random_bytes, signed_message};
use super::names::Name;

/// File name of the sealed human key inside the config directory.
pub const HUMAN_KEY_FILE: &str = "human-key";

const HEADER: &str = "conclave human key v1";

/// Separates the signature that registers a human key from any other use of it.
const REGISTER_DOMAIN: &[u8] = b"conclave-human-key-v1\0";

/// The shortest passphrase accepted: a few words, not a PIN.
pub const MIN_PASSPHRASE: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum HumanKeyError {
    #[error("this machine has no human key ({0} is missing): `conclave key --human` makes one")]
    Missing(PathBuf),
    #[error("{0} exists already; a machine has one human key")]
    Exists(PathBuf),
    #[error("the passphrase is wrong (or {0} was altered)")]
    WrongPassphrase(PathBuf),
    #[error("{0} is damaged: {1}")]
    Damaged(PathBuf, &'static str),
    #[error("a passphrase needs at least {MIN_PASSPHRASE} characters")]
    TooShort,
    #[error("cannot use {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Identity(#[from] super::identity::IdentityError),
    #[error("cannot stretch the passphrase: {0}")]
    Kdf(String),
}

pub fn path(dir: &Path) -> PathBuf {
    dir.join(HUMAN_KEY_FILE)
}

/// Whether this machine has a human key (then its people's sessions need the passphrase).
pub fn exists(dir: &Path) -> bool {
    path(dir).exists()
}

/// Argon2id's cost, written into the file (and authenticated with it), so a file keeps
/// opening whatever the defaults become. Costly on purpose: whoever can read the file can
/// guess passphrases offline, so each guess should take a good fraction of a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cost {
    /// Memory in KiB.
    m: u32,
    /// Passes.
    t: u32,
    /// Lanes.
    p: u32,
}

impl Cost {
    const CURRENT: Self = Self {
        m: 64 * 1024,
        t: 3,
        p: 1,
    };

    fn line(self) -> String {
        format!("argon2id m={} t={} p={}", self.m, self.t, self.p)
    }

    /// Reads `argon2id m=.. t=.. p=..`, refusing costs no real file has (a tampered file must
    /// not make opening it take all memory).
    fn parse(line: &str) -> Option<Self> {
        let mut words = line.split(' ');
        (words.next()? == "argon2id").then_some(())?;
        let mut number =
            |name: &str| -> Option<u32> { words.next()?.strip_prefix(name)?.parse().ok() };
        let cost = Self {
            m: number("m=")?,
            t: number("t=")?,
            p: number("p=")?,
        };
        let sane = (8 * 1024..=1024 * 1024).contains(&cost.m)
            && (1..=16).contains(&cost.t)
            && (1..=8).contains(&cost.p);
        sane.then_some(cost)
    }
}

/// The key Argon2id derives from `passphrase` and `salt` at `cost`.
fn stretch(passphrase: &str, salt: &[u8], cost: Cost) -> Result<[u8; 32], HumanKeyError> {
    let params = argon2::Params::new(cost.m, cost.t, cost.p, Some(32))
        .map_err(|e| HumanKeyError::Kdf(e.to_string()))?;
    let mut key = [0u8; 32];
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, &mut key)
        .map_err(|e| HumanKeyError::Kdf(e.to_string()))?;
    Ok(key)
}

/// What the seal authenticates besides the secret: the format, the cost and the public key.
fn associated(cost: Cost, public: &str) -> Vec<u8> {
    format!("{HEADER}\n{}\n{public}", cost.line()).into_bytes()
}

/// Makes a human key, seals it under `passphrase` into `dir` (mode 0600) and returns it.
/// Never replaces an existing one.
pub fn create(dir: &Path, passphrase: &str) -> Result<Identity, HumanKeyError> {
    if passphrase.chars().count() < MIN_PASSPHRASE {
        return Err(HumanKeyError::TooShort);
    }
    let file = path(dir);
    let identity = Identity::generate()?;
    let public = identity.public_key_string();
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 12];
    random_bytes(&mut salt)?;
    random_bytes(&mut nonce)?;
    let cost = Cost::CURRENT;
    let key = stretch(passphrase, &salt, cost)?;
    let cipher =
        ChaCha20Poly1305::new_from_slice(&key).map_err(|e| HumanKeyError::Kdf(e.to_string()))?;
    let aad = associated(cost, &public);
    let sealed = cipher
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: &identity.seed(),
                aad: &aad,
            },
        )
        .map_err(|_| HumanKeyError::Kdf("sealing failed".into()))?;
    let text = format!(
        "{HEADER}\nkdf {}\npublic {public}\nsalt {}\nnonce {}\nsealed {}\n",
        cost.line(),
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(nonce),
        STANDARD_NO_PAD.encode(sealed),
    );
    let io = |source| HumanKeyError::Io {
        path: file.clone(),
        source,
    };
    fs::create_dir_all(dir).map_err(io)?;
    let mut out = match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&file)
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(HumanKeyError::Exists(file));
        }
        Err(e) => return Err(io(e)),
    };
    out.write_all(text.as_bytes())
        .and_then(|()| out.sync_all())
        .map_err(io)?;
    Ok(identity)
}

/// Opens the human key in `dir` with `passphrase`.
pub fn unlock(dir: &Path, passphrase: &str) -> Result<Identity, HumanKeyError> {
    let file = path(dir);
    let text = match fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(HumanKeyError::Missing(file));
        }
        Err(source) => return Err(HumanKeyError::Io { path: file, source }),
    };
    let damaged = |why| HumanKeyError::Damaged(file.clone(), why);
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(damaged("not a conclave human key"));
    }
    let mut field = |name: &str| -> Result<String, HumanKeyError> {
        lines
            .next()
            .and_then(|l| l.strip_prefix(name))
            .and_then(|l| l.strip_prefix(' '))
            .map(str::to_owned)
            .ok_or_else(|| damaged("a line is missing"))
    };
    let cost = Cost::parse(&field("kdf")?).ok_or_else(|| damaged("unknown key stretching"))?;
    let public = field("public")?;
    let bytes = |text: String| {
        STANDARD_NO_PAD
            .decode(text)
            .map_err(|_| damaged("bad base64"))
    };
    let salt = bytes(field("salt")?)?;
    let nonce: [u8; 12] = bytes(field("nonce")?)?
        .try_into()
        .map_err(|_| damaged("bad nonce"))?;
    let sealed = bytes(field("sealed")?)?;
    let key = stretch(passphrase, &salt, cost)?;
    let cipher =
        ChaCha20Poly1305::new_from_slice(&key).map_err(|e| HumanKeyError::Kdf(e.to_string()))?;
    let aad = associated(cost, &public);
    let seed: [u8; 32] = cipher
        .decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: &sealed,
                aad: &aad,
            },
        )
        .map_err(|_| HumanKeyError::WrongPassphrase(file.clone()))?
        .try_into()
        .map_err(|_| damaged("bad key length"))?;
    let identity = Identity::from_seed(&seed);
    if identity.public_key_string() != public {
        return Err(damaged("the key does not match its public half"));
    }
    Ok(identity)
}

/// What a human key signs to be registered for `user/machine` on the server `server_id`.
pub fn registration_message(
    server_id: &str,
    user: &Name,
    machine: &Name,
    public_key: &[u8],
) -> Vec<u8> {
    signed_message(
        REGISTER_DOMAIN,
        &[
            server_id.as_bytes(),
            user.as_str().as_bytes(),
            machine.as_str().as_bytes(),
            public_key,
        ],
    )
}

/// Reads a passphrase from the terminal without echoing it (from `/dev/tty`, so it works
/// with stdin and stdout redirected, and an agent without a terminal cannot be asked).
pub fn prompt(question: &str) -> std::io::Result<String> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    let tty = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    let saved = tcgetattr(&tty)?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    tcsetattr(&tty, OptionalActions::Flush, &quiet)?;
    let mut out = &tty;
    let read = (|| -> std::io::Result<String> {
        write!(out, "{question}")?;
        out.flush()?;
        let mut line = String::new();
        std::io::BufReader::new(&tty).read_line(&mut line)?;
        Ok(line)
    })();
    let _ = tcsetattr(&tty, OptionalActions::Flush, &saved);
    let _ = writeln!(out);
    let line = read?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// `unlock_interactively` off the async runtime: the terminal read and the key stretching
/// both block.
pub async fn unlock_at_terminal(dir: &Path) -> Result<Identity, HumanKeyError> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || unlock_interactively(&dir))
        .await
        .map_err(|e| HumanKeyError::Kdf(format!("the passphrase prompt stopped: {e}")))?
}

/// Asks on the terminal for the passphrase until it opens the human key in `dir`, three
/// tries at most.
fn unlock_interactively(dir: &Path) -> Result<Identity, HumanKeyError> {
    const TRIES: usize = 3;
    let mut tries = 0;
    loop {
        tries += 1;
        let passphrase = prompt("passphrase of this machine's human key: ").map_err(|source| {
            HumanKeyError::Io {
                path: PathBuf::from("/dev/tty"),
                source,
            }
        })?;
        match unlock(dir, &passphrase) {
            Err(HumanKeyError::WrongPassphrase(_)) if tries < TRIES => {
                eprintln!("that passphrase does not open it; try again");
            }
            done => return done,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_key_opens_with_its_passphrase_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let made = create(dir.path(), "correct horse").unwrap();
        let opened = unlock(dir.path(), "correct horse").unwrap();
        assert_eq!(opened.public_key(), made.public_key());
        assert!(matches!(
            unlock(dir.path(), "wrong horse!"),
            Err(HumanKeyError::WrongPassphrase(_))
        ));
        // The secret never sits on disk in the clear.
        let text = std::fs::read_to_string(path(dir.path())).unwrap();
        assert!(!text.contains(&STANDARD_NO_PAD.encode(made.seed())));
        assert!(matches!(
            create(dir.path(), "another one"),
            Err(HumanKeyError::Exists(_))
        ));
    }

    #[test]
    fn a_swapped_public_key_or_a_short_passphrase_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            create(dir.path(), "short"),
            Err(HumanKeyError::TooShort)
        ));
        create(dir.path(), "correct horse").unwrap();
        let file = path(dir.path());
        let text = std::fs::read_to_string(&file).unwrap();
        let other = Identity::generate().unwrap().public_key_string();
        let public_line = text.lines().nth(2).unwrap().to_owned();
        std::fs::write(
            &file,
            text.replace(&public_line, &format!("public {other}")),
        )
        .unwrap();
        assert!(unlock(dir.path(), "correct horse").is_err());
    }

    #[test]
    fn the_cost_is_kept_in_the_file_and_a_weakened_or_absurd_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        create(dir.path(), "correct horse").unwrap();
        let file = path(dir.path());
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.contains(&format!("kdf {}", Cost::CURRENT.line())),
            "{text}"
        );
        // Lowering the cost to speed up guessing breaks the seal.
        let weaker = text.replace("t=3", "t=1");
        std::fs::write(&file, &weaker).unwrap();
        assert!(matches!(
            unlock(dir.path(), "correct horse"),
            Err(HumanKeyError::WrongPassphrase(_))
        ));
        // A cost no real file has is refused before any work.
        std::fs::write(&file, text.replace("m=65536", "m=99999999")).unwrap();
        assert!(matches!(
            unlock(dir.path(), "correct horse"),
            Err(HumanKeyError::Damaged(..))
        ));
    }
}
