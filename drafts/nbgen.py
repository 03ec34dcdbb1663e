"""Authoring aid (not committed): build an .ipynb from a py-percent text file.

Cells start with '# %%' (code) or '# %% [markdown]'; optional tags: '# %% tags=["a","b"]'.
Markdown cells are written with lines prefixed by '# ' or bare lines inside a triple-quoted block.
"""
import json, re, sys
import nbformat

def build(src_path, out_path):
    text = open(src_path).read()
    parts = re.split(r'^# %%(.*)$', text, flags=re.M)
    cells = []
    for header, body in zip(parts[1::2], parts[2::2]):
        tags = []
        m = re.search(r'tags=(\[.*?\])', header)
        if m:
            tags = json.loads(m.group(1))
        body = body.strip('\n')
        if '[markdown]' in header:
            lines = body.split('\n')
            lines = [l[2:] if l.startswith('# ') else ('' if l == '#' else l) for l in lines]
            cell = nbformat.v4.new_markdown_cell('\n'.join(lines))
        else:
            cell = nbformat.v4.new_code_cell(body)
        if tags:
            cell.metadata['tags'] = tags
        cells.append(cell)
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata['kernelspec'] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata['language_info'] = {"name": "python"}
    for i, c in enumerate(nb.cells):
        c['id'] = f"c{i:03d}"
    nbformat.write(nb, out_path)

if __name__ == '__main__':
    build(sys.argv[1], sys.argv[2])
