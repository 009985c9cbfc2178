//! Waste accounting against hand-computed byte counts.

use pare_layerfs::{Kind, MergedFs, ReadOptions, Supersede, read_image};
use pare_test_support::layer::{LayerBuilder as L, MemSource};

fn merged(layers: Vec<Vec<u8>>) -> MergedFs {
    let n = layers.len();
    let src = MemSource::with_history(layers, &vec!["RUN x"; n]);
    read_image(
        &src,
        &ReadOptions {
            hash: true,
            ..Default::default()
        },
    )
    .unwrap()
}

#[test]
fn file_overwritten_three_times_counts_only_superseded_copies() {
    let fs = merged(vec![
        L::new().dir("a").sized("a/f", 100, b'1').finish(),
        L::new().dir("a").sized("a/f", 200, b'2').finish(),
        L::new().dir("a").sized("a/f", 300, b'3').finish(),
        L::new().dir("a").sized("a/f", 400, b'4').finish(),
    ]);
    // 100 + 200 + 300 superseded; the visible 400-byte copy is not waste.
    assert_eq!(fs.wasted_bytes(), 600);
    assert_eq!(fs.total_size(), 1000);
    assert_eq!(fs.final_size(), 400);
    let per_layer: Vec<u64> = fs.layers.iter().map(|l| l.wasted_bytes).collect();
    assert_eq!(per_layer, vec![100, 200, 300, 0]);
    assert_eq!(fs.layers[3].modified, 1);
    assert_eq!(fs.layers[3].modified_bytes, 400);
    assert_eq!(fs.layers[0].added, 2);
    let f = fs.get("a/f").unwrap();
    assert_eq!((f.layer, f.size), (3, 400));
    assert_eq!(fs.superseded.len(), 3);
    assert!(
        fs.superseded
            .iter()
            .all(|s| s.how == Supersede::Overwritten)
    );
}

#[test]
fn deleted_directory_counts_everything_beneath() {
    let fs = merged(vec![
        L::new()
            .dir("d")
            .sized("d/x", 10, b'x')
            .dir("d/sub")
            .sized("d/sub/y", 20, b'y')
            .sized("d/sub/z", 30, b'z')
            .sized("keep", 5, b'k')
            .finish(),
        L::new().whiteout("d").finish(),
    ]);
    assert_eq!(fs.wasted_bytes(), 60);
    assert_eq!(fs.layers[1].deleted, 5); // d, d/x, d/sub, d/sub/y, d/sub/z
    assert_eq!(fs.layers[1].deleted_bytes, 60);
    assert!(fs.get("d").is_none() && fs.get("d/sub/z").is_none());
    assert!(fs.get("keep").is_some());
    assert_eq!(fs.final_size(), 5);
}

#[test]
fn opaque_directory_hides_lower_contents() {
    let fs = merged(vec![
        L::new()
            .dir("o")
            .sized("o/a", 7, b'a')
            .sized("o/b", 11, b'b')
            .dir("p")
            .sized("p/q", 3, b'q')
            .finish(),
        L::new()
            .dir("o")
            .opaque("o")
            .sized("o/c", 13, b'c')
            .finish(),
    ]);
    assert_eq!(fs.wasted_bytes(), 18);
    assert!(fs.get("o/a").is_none() && fs.get("o/b").is_none());
    assert_eq!(fs.get("o/c").unwrap().size, 13);
    assert_eq!(fs.get("o").unwrap().kind, Kind::Dir);
    assert!(fs.get("p/q").is_some());
    assert_eq!(fs.layers[1].deleted, 2);
}

#[test]
fn hardlinked_data_is_counted_once_and_only_when_all_names_are_gone() {
    let base = L::new()
        .dir("h")
        .sized("h/a", 50, b'a')
        .hardlink("h/b", "h/a")
        .finish();
    // Deleting one name leaves the data visible through the other: no waste.
    let fs = merged(vec![base.clone(), L::new().whiteout("h/a").finish()]);
    assert_eq!(fs.wasted_bytes(), 0);
    assert_eq!(fs.total_size(), 50);
    // Deleting both names wastes the 50 bytes once, not twice.
    let fs = merged(vec![
        base.clone(),
        L::new().whiteout("h/a").finish(),
        L::new().whiteout("h/b").finish(),
    ]);
    assert_eq!(fs.wasted_bytes(), 50);
    assert_eq!(fs.layers[0].wasted_bytes, 50);
    let fs = merged(vec![base, L::new().whiteout("h").finish()]);
    assert_eq!(fs.wasted_bytes(), 50);
}

#[test]
fn file_replaced_by_directory_and_directory_by_file() {
    let fs = merged(vec![
        L::new()
            .sized("x", 9, b'x')
            .dir("y")
            .sized("y/z", 4, b'z')
            .finish(),
        L::new()
            .dir("x")
            .sized("x/in", 1, b'i')
            .sized("y", 2, b'y')
            .finish(),
    ]);
    assert_eq!(fs.wasted_bytes(), 13);
    assert_eq!(fs.get("y").unwrap().kind, Kind::File);
    assert!(fs.get("y/z").is_none());
}

#[test]
fn whiteout_of_a_path_from_the_same_layer_only_touches_lower_layers() {
    let fs = merged(vec![
        L::new().sized("f", 10, b'f').finish(),
        L::new().whiteout("g").sized("g", 3, b'g').finish(),
    ]);
    assert_eq!(fs.wasted_bytes(), 0);
    assert_eq!(fs.get("g").unwrap().size, 3);
}

#[test]
fn layers_are_read_in_parallel_but_merged_in_order() {
    let layers: Vec<Vec<u8>> = (0..8u8)
        .map(|i| L::new().sized("f", 10 + usize::from(i), i).finish())
        .collect();
    let src = MemSource::with_history(layers, &["RUN x"; 8]);
    let fs = read_image(
        &src,
        &ReadOptions {
            threads: 4,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(fs.get("f").unwrap().size, 17);
    assert_eq!(fs.wasted_bytes(), (10..17).sum::<u64>());
}
