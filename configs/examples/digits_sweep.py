"""The digits sweep of digits-sweep.yaml, built with ccd's Python API.

    pip install -e '.[examples,notebooks]'
    python configs/examples/digits_sweep.py      # submits it and follows it to the end
"""

from __future__ import annotations

from ccd import Client, Workflow


def build() -> Workflow:
    wf = Workflow("digits-sweep")
    prepare = wf.job("prepare", script="digits/prepare.py")
    train = wf.job(
        "train",
        needs=[prepare],
        foreach=prepare.outputs["grid"],
        script="digits/train.py",
        args=["--data", prepare.outputs["data"]],
        timeout="10m",
    )
    wf.job(
        "report",
        needs=[train],
        script="digits/report.ipynb",
        params={"accs": train.outputs["acc"], "params": train.outputs["params"]},
    )
    return wf


def main() -> None:
    client = Client()
    ref = client.submit(build())
    print(f"submitted {ref.name} as {ref.id}")
    for event in client.events(ref, follow=True):
        print(event.text)
    status = client.status(ref)
    print(f"{ref.id}: {status.state}")
    raise SystemExit(0 if status.state == "succeeded" else 1)


if __name__ == "__main__":
    main()
