//! hostPath: the node's path itself, after upstream's `type` check (`DirectoryOrCreate` and
//! `FileOrCreate` create what is missing).

use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use k8s_openapi::api::core::v1::HostPathVolumeSource;

use super::error::{io, VolumeError};

fn failed(path: &str, what: &str) -> VolumeError {
    VolumeError::Setup(format!(
        "hostPath type check failed: {path} is not a {what}"
    ))
}

/// Checks (and for the `*OrCreate` types, makes) the path of `src`.
pub fn check_type(src: &HostPathVolumeSource) -> Result<(), VolumeError> {
    let path = src.path.as_str();
    let p = Path::new(path);
    let md = std::fs::metadata(p).ok();
    let ft = md.as_ref().map(|m| m.file_type());
    match src.type_.as_deref().unwrap_or("") {
        "" => Ok(()),
        "DirectoryOrCreate" if md.is_none() => {
            std::fs::create_dir_all(p).map_err(io("mkdir", p))?;
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))
                .map_err(io("chmod", p))
        }
        "DirectoryOrCreate" | "Directory" => match ft {
            Some(t) if t.is_dir() => Ok(()),
            _ => Err(failed(path, "directory")),
        },
        "FileOrCreate" if md.is_none() => std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o644)
            .open(p)
            .map(drop)
            .map_err(io("create", p)),
        "FileOrCreate" | "File" => match ft {
            Some(t) if t.is_file() => Ok(()),
            _ => Err(failed(path, "file")),
        },
        "Socket" => match ft {
            Some(t) if t.is_socket() => Ok(()),
            _ => Err(failed(path, "socket file")),
        },
        "CharDevice" => match ft {
            Some(t) if t.is_char_device() => Ok(()),
            _ => Err(failed(path, "character device")),
        },
        "BlockDevice" => match ft {
            Some(t) if t.is_block_device() => Ok(()),
            _ => Err(failed(path, "block device")),
        },
        other => Err(VolumeError::Setup(format!(
            "{other} is an invalid volume type"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(path: &Path, t: &str) -> HostPathVolumeSource {
        HostPathVolumeSource {
            path: path.display().to_string(),
            type_: Some(t.to_string()),
        }
    }

    #[test]
    fn type_checks_as_upstream() {
        let d = tempfile::tempdir().unwrap();
        let made = d.path().join("a/b");
        check_type(&src(&made, "DirectoryOrCreate")).unwrap();
        assert!(made.is_dir());
        check_type(&src(&made, "Directory")).unwrap();
        let f = d.path().join("f");
        check_type(&src(&f, "FileOrCreate")).unwrap();
        assert!(f.is_file());
        let err = check_type(&src(&f, "Directory")).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "hostPath type check failed: {} is not a directory",
                f.display()
            )
        );
        let err = check_type(&src(&made, "File")).unwrap_err().to_string();
        assert!(err.ends_with("is not a file"), "{err}");
        let err = check_type(&src(&f, "Socket")).unwrap_err().to_string();
        assert!(err.ends_with("is not a socket file"), "{err}");
        check_type(&src(Path::new("/dev/null"), "CharDevice")).unwrap();
        let err = check_type(&src(&d.path().join("none"), "BlockDevice")).unwrap_err();
        assert!(err.to_string().ends_with("is not a block device"));
    }
}
