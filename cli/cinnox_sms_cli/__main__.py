from cinnox_sms_cli.main import main

raise SystemExit(main())
