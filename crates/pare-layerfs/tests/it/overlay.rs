//! overlay2 `diff` directories: whiteouts are 0/0 character devices, opaque directories carry
//! `trusted.overlay.opaque=y`, hard links share an inode. Creating those needs root.

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use pare_layerfs::{
    Event, Kind, LayerContent, MergedFs, ReadOptions, extract_layer, read_layer, walk_layer,
};

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

#[test]
fn overlay_dir_whiteouts_opaque_and_hardlinks() {
    if !is_root() {
        eprintln!("skipped: creating whiteout devices and trusted.* xattrs needs root");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let lower = t.path().join("lower");
    let upper = t.path().join("upper");
    std::fs::create_dir_all(lower.join("etc")).unwrap();
    std::fs::create_dir_all(lower.join("opq")).unwrap();
    std::fs::write(lower.join("etc/gone"), vec![1u8; 40]).unwrap();
    std::fs::write(lower.join("opq/old"), vec![2u8; 60]).unwrap();
    std::fs::write(lower.join("keep"), vec![3u8; 5]).unwrap();

    std::fs::create_dir_all(upper.join("etc")).unwrap();
    std::fs::create_dir_all(upper.join("opq")).unwrap();
    let st = Command::new("mknod")
        .arg(upper.join("etc/gone"))
        .args(["c", "0", "0"])
        .status()
        .unwrap();
    assert!(st.success());
    xattr::set(upper.join("opq"), "trusted.overlay.opaque", b"y").unwrap();
    std::fs::write(upper.join("opq/new"), vec![4u8; 7]).unwrap();
    std::fs::write(upper.join("data"), vec![5u8; 30]).unwrap();
    std::fs::hard_link(upper.join("data"), upper.join("link")).unwrap();

    let mut events = Vec::new();
    walk_layer(
        LayerContent::OverlayDir(upper.clone()),
        "sha256:upper",
        &mut |ev, _| {
            events.push(ev);
            Ok(())
        },
    )
    .unwrap();
    assert!(events.contains(&Event::Whiteout("etc/gone".into())));
    assert!(events.contains(&Event::Opaque("opq".into())));
    let link = events.iter().find_map(|e| match e {
        Event::Entry(e) if e.path == "link" => Some(e.clone()),
        _ => None,
    });
    assert_eq!(
        link.map(|l| (l.kind, l.link)),
        Some((Kind::Hardlink, Some("data".to_string())))
    );

    // Extraction applies the same semantics.
    let dest = t.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    extract_layer(
        LayerContent::OverlayDir(lower.clone()),
        "sha256:lower",
        &dest,
    )
    .unwrap();
    let st = extract_layer(
        LayerContent::OverlayDir(upper.clone()),
        "sha256:upper",
        &dest,
    )
    .unwrap();
    assert!(!dest.join("etc/gone").exists() && dest.join("etc").is_dir());
    assert!(!dest.join("opq/old").exists());
    assert_eq!(std::fs::read(dest.join("opq/new")).unwrap(), vec![4u8; 7]);
    assert_eq!(
        std::fs::metadata(dest.join("link")).unwrap().ino(),
        std::fs::metadata(dest.join("data")).unwrap().ino()
    );
    assert_eq!(std::fs::read(dest.join("keep")).unwrap(), vec![3u8; 5]);
    assert!(
        xattr::get(dest.join("opq"), "trusted.overlay.opaque")
            .unwrap()
            .is_none()
    );
    assert_eq!(st.hardlinks, 1);

    let opts = ReadOptions {
        hash: true,
        ..Default::default()
    };
    let mut fs = MergedFs::new();
    fs.apply(read_layer(LayerContent::OverlayDir(lower), "sha256:lower", &opts).unwrap());
    fs.apply(read_layer(LayerContent::OverlayDir(upper), "sha256:upper", &opts).unwrap());
    assert_eq!(fs.wasted_bytes(), 100);
    assert!(fs.get("etc/gone").is_none() && fs.get("opq/old").is_none());
    assert_eq!(fs.get("opq/new").unwrap().size, 7);
    assert_eq!(fs.final_size(), 5 + 7 + 30);
}
