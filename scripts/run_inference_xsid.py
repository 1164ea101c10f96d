"""xSID slot-filling inference (the MASSIVE script's flags plus --data-dir). Logic: midalign.tasks.xsid_cli."""

from midalign.tasks.xsid_cli import infer

if __name__ == "__main__":
    infer()
