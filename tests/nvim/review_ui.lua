-- Drives headless Neovim for the review of agent edits (issue 19), without a server: loads
-- the aisci plugin as a user does, checks that it declares experimental.aisciEditReview,
-- renders a fixture proposal (a change, an insertion, a deletion; the shape of
-- `aisci/editProposed`) with the pure functions, feeds it to the client's editProposed
-- handler and presses the review buffer's keys with the server stubbed out at
-- require('aisci').exec, recording what would have been sent: the accepted hunks of
-- aisci.resolveEdit, the undecided-hunks confirmation, q and :AisciEdits
-- (aisci.pendingEdits), and aisci/editResolved closing the review.
--
--   nvim --headless --clean -l review_ui.lua PLUGIN_DIR WORKDIR REPORT

local plugin_dir, workdir, report_path = unpack(arg)
assert(report_path, 'usage: review_ui.lua PLUGIN_DIR WORKDIR REPORT')

local H = dofile(vim.fs.joinpath(vim.fs.dirname(debug.getinfo(1, 'S').source:sub(2)), 'harness.lua'))
local report = H.init(report_path, { notes = {}, sent = {}, cursor = {}, confirms = {} })

local file = workdir .. '/experiment.py'

local EXPERIMENT = {
  'import torch',
  '',
  'def init_weights(d):',
  '    w = torch.randn(d, d)',
  '    return w',
  '',
  'def train(model):',
  '    opt = torch.optim.SGD(model.parameters(), lr=0.1)',
  '    for step in range(100):',
  '        loss = model.step()',
  '        print(step, loss)',
  "        print('debug', loss.item())",
  '        opt.step()',
  '    return loss',
}

-- As the server sends it (decoded as the LSP client decodes it: null is vim.NIL).
local function proposal(id)
  return vim.json.decode((([[{
    "id": ID, "file": "FILE", "uri": "URI", "label": "aisci: init_scale_regimes", "version": null,
    "hunks": [
      {"index": 0, "start_line": 3, "old_lines": ["    w = torch.randn(d, d)"],
       "new_lines": ["    scale = d ** -0.5", "    w = torch.randn(d, d) * scale"]},
      {"index": 1, "start_line": 8, "old_lines": [],
       "new_lines": ["    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 100)"]},
      {"index": 2, "start_line": 10, "old_lines": ["        print(step, loss)", "        print('debug', loss.item())"],
       "new_lines": []}
    ]
  }]]):gsub('ID', tostring(id)):gsub('FILE', file):gsub('URI', vim.uri_from_fname(file))))
end

local HELP = ']h/[h hunks   a accept   x reject   A/X accept/reject the rest   <CR>/s submit   q close'

local function rendered(m1, m2, m3)
  return {
    'aisci: init_scale_regimes · experiment.py · 3 hunks',
    HELP,
    '',
    m1 .. ' @@ hunk 1/3, line 4 @@',
    '-    w = torch.randn(d, d)',
    '+    scale = d ** -0.5',
    '+    w = torch.randn(d, d) * scale',
    m2 .. ' @@ hunk 2/3, after line 8 @@',
    '+    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 100)',
    m3 .. ' @@ hunk 3/3, lines 11–12 @@',
    "-        print(step, loss)",
    "-        print('debug', loss.item())",
  }
end
local U, OK, NO = '[ ]', '[✓]', '[✗]'

local function same(got, want, what)
  if not vim.deep_equal(got, want) then
    error(('%s:\n--- got\n%s\n--- want\n%s'):format(what, vim.inspect(got), vim.inspect(want)), 0)
  end
end

local function press(keys)
  vim.api.nvim_feedkeys(vim.keycode(keys), 'mx', false)
end

local function cursor()
  local l = vim.api.nvim_win_get_cursor(0)[1]
  table.insert(report.cursor, l)
  return l
end

local function last_note()
  return report.notes[#report.notes] and report.notes[#report.notes].msg
end

local function review_buf(id)
  local s = require('aisci.review').state[id]
  return s and s.buf
end

-- The signs (and texts) aisci put into the target buffer for proposal `id`.
local function target_marks(buf, id)
  local ns = vim.api.nvim_create_namespace('aisci-review-' .. id)
  local out = {}
  for _, m in ipairs(vim.api.nvim_buf_get_extmarks(buf, ns, 0, -1, { details = true })) do
    local d = m[4]
    local text = d.virt_text and d.virt_text[1][1] or nil
    table.insert(out, { row = m[2], sign = vim.trim(d.sign_text or ''), text = text })
  end
  return out
end

local function main()
  vim.opt.runtimepath:prepend(plugin_dir)
  vim.cmd.runtime('plugin/aisci.lua')
  assert(vim.fn.exists(':AisciEdits') == 2, ':AisciEdits is not defined')
  vim.notify = function(msg, level)
    table.insert(report.notes, { msg = msg, level = level or vim.log.levels.INFO })
  end
  -- No prompt.json beside experiment.py: not a template, so no server is started.
  vim.fn.writefile(EXPERIMENT, file)
  vim.cmd.cd(vim.fn.fnameescape(workdir))
  require('aisci').setup({ cmd = { workdir .. '/no-server', 'lsp' } })

  -- What the client is started with: the capability and the two handlers.
  local config = assert(vim.lsp.config and vim.lsp.config.aisci, 'no vim.lsp.config for aisci')
  report.experimental = config.capabilities.experimental
  assert(report.experimental.aisciEditReview == true, vim.inspect(report.experimental))
  assert(config.capabilities.textDocument ~= nil, "Neovim's own capabilities are kept")
  local handlers = config.handlers
  assert(handlers['aisci/editProposed'] and handlers['aisci/editResolved'], 'the review handlers')
  local ctx = { method = 'aisci/editProposed', client_id = 1 }

  -- The pure part: proposal → lines and the hunk of each line; decisions → accept list.
  local review = require('aisci.review')
  local p = proposal(7)
  local lines, layout = review.render(p, {})
  report.lines = lines
  same(lines, rendered(U, U, U), 'rendered lines')
  local hunk_of = {}
  for lnum = 1, #lines do
    local row = layout.rows[lnum]
    hunk_of[lnum] = row and row.hunk or -1
  end
  same(hunk_of, { -1, -1, -1, 0, 0, 0, 0, 1, 1, 2, 2, 2 }, 'hunk of each line')
  same(layout.starts, { [0] = 4, [1] = 8, [2] = 10 }, 'header line of each hunk')
  same(review.render(p, { [0] = 'accept', [2] = 'reject' }), rendered(OK, U, NO), 'markers')
  same(review.accepted(p, { [0] = 'accept', [1] = 'reject', [2] = 'accept' }), { 0, 2 }, 'accepted')
  same(review.undecided(p, { [1] = 'reject' }), { 0, 2 }, 'undecided')
  assert(review.next_undecided(p, { [1] = 'accept' }, 2) == 0, 'next undecided wraps around')
  same(review.summary(p, { applied = { 0, 2 }, rejected = { 1 } }), 'applied 2 of 3 hunks to experiment.py; u undoes them', 'summary')
  same(review.summary(p, { applied = {}, rejected = { 0, 1, 2 } }), 'applied none of the 3 hunks to experiment.py', 'summary of none')
  H.step('rendered')

  -- The server, stubbed: what would be sent, and its answers.
  local pending = {}
  require('aisci').exec = function(_, command, arguments, _, on_done)
    table.insert(report.sent, { command = command, arguments = arguments })
    if command == 'aisci.resolveEdit' then
      local accept = arguments[1].accept
      local rejected = vim.tbl_filter(function(i)
        return not vim.list_contains(accept, i)
      end, { 0, 1, 2 })
      on_done(nil, { applied = accept, rejected = rejected })
    elseif command == 'aisci.pendingEdits' then
      on_done(nil, pending)
    end
  end
  vim.fn.confirm = function(msg, choices, default)
    table.insert(report.confirms, { msg = msg, choices = choices, default = default })
    return report.confirm_answer
  end

  -- The proposal arrives while experiment.py is open: the review opens below, the
  -- cursor stays where the user types, the target gets a sign per hunk line.
  vim.cmd.edit(vim.fn.fnameescape(file))
  local target = vim.api.nvim_get_current_buf()
  local origin = vim.api.nvim_get_current_win()
  handlers['aisci/editProposed'](nil, proposal(7), ctx)
  local buf = assert(review_buf(7), 'no review buffer')
  report.proposed_note = last_note()
  same(report.proposed_note, 'aisci: init_scale_regimes proposes 3 hunks to experiment.py: review below (:AisciEdits)', 'proposed note')
  report.buffer_name = vim.api.nvim_buf_get_name(buf)
  assert(report.buffer_name == 'aisci://review/7', report.buffer_name)
  assert(vim.api.nvim_get_current_win() == origin, 'the review does not take the cursor')
  local win = vim.fn.bufwinid(buf)
  assert(win ~= -1, 'the review is shown')
  same(vim.api.nvim_buf_get_lines(buf, 0, -1, false), rendered(U, U, U), 'the buffer shows the rendered lines')
  assert(not vim.bo[buf].modifiable and vim.bo[buf].buftype == 'nofile', 'a read-only scratch buffer')
  report.target_marks = target_marks(target, 7)
  same(vim.tbl_map(function(m)
    return { m.row, m.sign }
  end, report.target_marks), { { 3, '~' }, { 8, '+' }, { 10, '-' }, { 11, '-' } }, 'signs in experiment.py')
  same(report.target_marks[1].text, 'aisci hunk 1/3 [ ]', 'the hunk and its state beside its line')
  local line_hl = {}
  for _, m in ipairs(vim.api.nvim_buf_get_extmarks(buf, vim.api.nvim_create_namespace('aisci-review'), 0, -1, { details = true })) do
    line_hl[m[2] + 1] = line_hl[m[2] + 1] or m[4].line_hl_group
  end
  report.line_hl = { line_hl[5], line_hl[6], line_hl[9], line_hl[11] }
  same(report.line_hl, { 'DiffDelete', 'DiffAdd', 'DiffAdd', 'DiffDelete' }, 'highlights of - and + lines')

  -- The keys: ]h [h move, a accepts and moves on, x rejects and moves on, A the rest, s sends.
  vim.api.nvim_set_current_win(win)
  assert(cursor() == 4, 'the cursor starts on the first hunk')
  press(']h')
  assert(cursor() == 8, ']h: the next hunk')
  press('[h')
  assert(cursor() == 4, '[h: the previous hunk')
  press('a')
  assert(cursor() == 8, 'a: on to the next undecided hunk')
  same(target_marks(target, 7)[1].text, 'aisci hunk 1/3 [✓]', 'the target shows the decision')
  press('x')
  assert(cursor() == 10, 'x: on to the next undecided hunk')
  press(']h')
  assert(cursor() == 10, ']h on the last hunk stays')
  press('A')
  report.decided_lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  same(report.decided_lines, rendered(OK, NO, OK), 'after a, x, A')
  press('s')
  same(report.sent, { { command = 'aisci.resolveEdit', arguments = { { id = 7, accept = { 0, 2 } } } } }, 'resolveEdit')
  report.accept = report.sent[1].arguments[1].accept
  assert(#report.confirms == 0, 'every hunk was decided: no question')
  report.applied_note = last_note()
  same(report.applied_note, 'aisci: applied 2 of 3 hunks to experiment.py; u undoes them', 'the answer')
  report.closed_after_submit = not vim.api.nvim_buf_is_valid(buf) and review.state[7] == nil
  assert(report.closed_after_submit, 'the review closes once resolved')
  assert(#target_marks(target, 7) == 0, "the target's marks go")
  H.step('submitted')

  -- q closes without deciding; :AisciEdits reopens it (decisions kept); undecided hunks
  -- are only rejected after a confirmation; editResolved closes the review.
  vim.api.nvim_set_current_win(origin)
  handlers['aisci/editProposed'](nil, proposal(8), ctx)
  vim.api.nvim_set_current_win(vim.fn.bufwinid(review_buf(8)))
  press('x')
  press('q')
  report.closed_by_q = review_buf(8) == nil and vim.fn.bufnr('aisci://review/8') == -1
  assert(report.closed_by_q, 'q closes the review window (and its buffer)')
  assert(#target_marks(target, 8) == 4, 'still pending: the marks stay')
  pending = { proposal(8) }
  vim.cmd('AisciEdits')
  same(report.sent[#report.sent], { command = 'aisci.pendingEdits', arguments = {} }, 'pendingEdits')
  local buf8 = assert(review_buf(8), ':AisciEdits reopens the review')
  assert(vim.api.nvim_get_current_buf() == buf8, ':AisciEdits takes the cursor there')
  report.reopened_lines = vim.api.nvim_buf_get_lines(buf8, 0, -1, false)
  same(report.reopened_lines, rendered(NO, U, U), 'reopened with the decision kept')
  assert(cursor() == 8, 'the cursor on the first undecided hunk')
  local sent_before = #report.sent
  report.confirm_answer = 2
  vim.api.nvim_win_set_cursor(0, { 1, 0 })
  press('<CR>')
  assert(#report.sent == sent_before, 'cancelled: nothing sent')
  report.confirm = report.confirms[1]
  same(report.confirm, { msg = '2 hunks of 3 undecided: reject them and submit?', choices = '&Submit\n&Cancel', default = 2 }, 'the question')
  assert(cursor() == 8, 'cancelled: the cursor on the first undecided hunk')
  press('X')
  same(vim.api.nvim_buf_get_lines(buf8, 0, -1, false), rendered(NO, NO, NO), 'X rejects the rest')
  handlers['aisci/editResolved'](nil, { id = 8, reason = 'cancelled' }, { method = 'aisci/editResolved', client_id = 1 })
  report.closed_by_resolved = not vim.api.nvim_buf_is_valid(buf8) and review.state[8] == nil and vim.fn.bufnr('aisci://review/8') == -1
  assert(report.closed_by_resolved, 'editResolved closes the review')
  assert(#target_marks(target, 8) == 0, "editResolved clears the target's marks")
  report.resolved_note = last_note()
  same(report.resolved_note, 'aisci: init_scale_regimes: the proposed edit of experiment.py was cancelled', 'cancelled note')
  handlers['aisci/editResolved'](nil, { id = 99, reason = 'resolved' }, {})
  H.step('q, :AisciEdits, editResolved')

  -- Submitting with undecided hunks, confirmed: they count as rejected.
  handlers['aisci/editProposed'](nil, proposal(9), ctx)
  vim.api.nvim_set_current_win(vim.fn.bufwinid(review_buf(9)))
  press('a')
  report.confirm_answer = 1
  press('s')
  report.partial = report.sent[#report.sent]
  same(report.partial, { command = 'aisci.resolveEdit', arguments = { { id = 9, accept = { 0 } } } }, 'undecided hunks rejected')
  report.partial_note = last_note()
  same(report.partial_note, 'aisci: applied 1 of 3 hunks to experiment.py; u undoes it', 'the answer')

  -- Several pending: the user picks one; none: it says so.
  pending = { proposal(10), proposal(11) }
  local items
  vim.ui.select = function(list, opts, on_choice)
    items = vim.tbl_map(opts.format_item, list)
    on_choice(list[2])
  end
  vim.cmd('AisciEdits')
  report.select_items = items
  same(items, { 'aisci: init_scale_regimes · experiment.py · 3 hunks', 'aisci: init_scale_regimes · experiment.py · 3 hunks' }, 'choices')
  assert(review_buf(11) and not review_buf(10), 'the picked one opens')
  -- A proposal the server no longer has is forgotten on the next :AisciEdits.
  pending = {}
  vim.cmd('AisciEdits')
  assert(review_buf(11) == nil and review.state[11] == nil, 'gone from the server: closed')
  report.none_note = last_note()
  same(report.none_note, 'aisci: no edit waits for review', 'nothing pending')
  H.step('done')
end

H.run('review_ui.lua', main)
