from voicechat.cli import main

raise SystemExit(main())
