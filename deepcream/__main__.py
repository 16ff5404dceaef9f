from deepcream.cli import entry

entry()
