//! The orderer's private keys on disk. As ssh does, a key file that anyone but its
//! owner may read or write is warned about when it is loaded (and still used: a
//! refusal would stop orderers whose keys are mounted 0644, as Kubernetes secrets are
//! by default).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Logs a warning naming `setting` (General.TLS.PrivateKey, the MSP keystore) when
/// the key file at `path` is open to others.
pub fn check_permissions(setting: &str, path: &Path) {
    if let Some(mode) = too_open(path) {
        tracing::warn!(
            "{setting} {}: permissions {mode:04o} are too open: the private key is \
             accessible to others than its owner; chmod 600 it",
            path.display()
        );
    }
}

/// [`check_permissions`] of every key (`*_sk`) in an MSP folder's `keystore/`.
pub fn check_keystore(msp_dir: &Path) {
    let keystore = msp_dir.join("keystore");
    let Ok(entries) = std::fs::read_dir(&keystore) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().ends_with("_sk") {
            check_permissions("General.LocalMSPDir keystore", &entry.path());
        }
    }
}

/// The file's permission bits when group or others have any.
fn too_open(path: &Path) -> Option<u32> {
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_open_to_others_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("priv_sk");
        std::fs::write(&key, "key").unwrap();
        let set = |mode| std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode));
        set(0o600).unwrap();
        assert_eq!(too_open(&key), None);
        set(0o400).unwrap();
        assert_eq!(too_open(&key), None);
        set(0o644).unwrap();
        assert_eq!(too_open(&key), Some(0o644));
        set(0o620).unwrap();
        assert_eq!(too_open(&key), Some(0o620));
        assert_eq!(too_open(&dir.path().join("missing")), None);
    }
}
