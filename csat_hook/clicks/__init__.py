"""Short links: ``GET /s/<reference>[/<score>]`` redirects to the survey form and records the
click as intent (``link_clicks``), human or automated; the funnel (sent → opened → answered)
reads them back for the report.

* :mod:`.web`: the endpoint, its pages and status codes;
* :mod:`.scanners`: which clicks look automated (the rules of docs/links.md);
* :mod:`.limits`: requests per minute per reference and per client;
* :mod:`.store`: the clicks' SQL (stored through the group commit, pruned, read by the sync);
* :mod:`.funnel`: which sent surveys were opened by a person.
"""
