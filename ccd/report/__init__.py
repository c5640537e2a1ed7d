"""Run reports: what each attempt of a workflow cost, as a table, JSON and a timeline.

Pure (no I/O): `build` turns a workflow's job rows and its ``job.state`` /
``job.usage`` events into the report the API sends; `units` formats its figures;
`gantt` lays out the timeline and `html` writes the self-contained page that
``ccctl report --html`` saves.
"""
