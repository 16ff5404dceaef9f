from deepcream.cli import main

raise SystemExit(main())
