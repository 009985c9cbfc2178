//! Unit tests of the trace model's small types.

mod activity {
    use crate::*;

    #[test]
    fn access_kind_display_is_its_json_name() {
        use AccessKind::*;
        for k in [
            Open, Write, Stat, Exec, Readlink, Chdir, Create, Delete, Modify, Watch, Socket,
            Fanotify,
        ] {
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{k}\""));
        }
    }

    #[test]
    fn activity_round_trips_and_rejects_garbage() {
        let a = SensorActivity {
            novelty: 42,
            listens: 2,
        };
        assert_eq!(SensorActivity::parse(&a.render()), Some(a));
        assert_eq!(SensorActivity::parse("novelty 1\n"), None);
        assert_eq!(SensorActivity::parse("novelty x\nlistens 1\n"), None);
        assert_eq!(SensorActivity::parse(""), None);
    }
}

mod volatile {
    use crate::*;

    #[test]
    fn volatile_fields_keep_their_json_form() {
        let fields = vec![
            VolatileField::Body,
            VolatileField::Header("content-type".into()),
        ];
        let json = serde_json::to_string(&fields).unwrap();
        assert_eq!(json, r#"["body","header:content-type"]"#);
        let back: Vec<VolatileField> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, fields);
        assert_eq!(back[1], "header:content-type");
        let err = serde_json::from_str::<Vec<VolatileField>>(r#"["status"]"#).unwrap_err();
        assert!(
            err.to_string().contains("\"status\" cannot be volatile"),
            "{err}"
        );
        assert_eq!(VolatileField::parse("exit_code"), None);
        assert_eq!(VolatileField::parse("body"), Some(VolatileField::Body));
    }
}
