--- Reviewing the agent's edits before they land. With the server setting `edits.review`
--- on, an agent's edit arrives as `aisci/editProposed` instead of a buffer change; it is
--- shown as a diff in a scratch buffer `aisci://review/<id>` where each hunk is accepted
--- or rejected, and submitting sends `aisci.resolveEdit`: the server then applies the
--- accepted hunks as one ordinary edit (`u` undoes it). Keys: ]h/[h next/previous hunk,
--- a accept, x reject (then on to the next undecided hunk), A/X accept/reject the rest,
--- <CR>/s submit (undecided hunks are rejected only after a confirmation), q close (the
--- proposal stays pending; :AisciEdits reopens it). The rendering and the hunk
--- bookkeeping (`render`, `accepted`, `undecided`, ...) are pure, for the tests.
local M = {}

local HELP = ']h/[h hunks   a accept   x reject   A/X accept/reject the rest   <CR>/s submit   q close'

local MARK = { accept = '[✓]', reject = '[✗]' }
local UNDECIDED = '[ ]'

local function marker(d)
  return MARK[d] or UNDECIDED
end

local function plural(n, word)
  return ('%d %s%s'):format(n, word, n == 1 and '' or 's')
end

--- Where hunk `h` lies in the file, 1-based as the user sees lines: "lines 12–14",
--- "line 12", or for an insertion the line it follows ("after line 20", "at the top").
--- @param h table a hunk: { index, start_line, old_lines, new_lines }
--- @return string
function M.where(h)
  local first, n = h.start_line + 1, #h.old_lines
  if n == 0 then
    return h.start_line == 0 and 'at the top' or ('after line %d'):format(h.start_line)
  elseif n == 1 then
    return ('line %d'):format(first)
  end
  return ('lines %d–%d'):format(first, first + n - 1)
end

--- The review buffer's lines for a proposal, and what each line is: `rows[lnum]` =
--- { kind = 'title'|'help'|'hunk'|'old'|'new', hunk = index? } and `starts[index]` =
--- the line of the hunk's `@@` header.
--- @param p table the proposal (`aisci/editProposed` params)
--- @param decisions table<integer, 'accept'|'reject'> by hunk index
--- @return string[] lines
--- @return { rows: table<integer, table>, starts: table<integer, integer> } layout
function M.render(p, decisions)
  local n = #p.hunks
  local lines = {
    ('%s · %s · %s'):format(p.label, vim.fn.fnamemodify(p.file, ':~:.'), plural(n, 'hunk')),
    HELP,
    '',
  }
  local rows = { { kind = 'title' }, { kind = 'help' } }
  local starts = {}
  local function add(line, kind, index)
    table.insert(lines, line)
    rows[#lines] = { kind = kind, hunk = index }
  end
  for k, h in ipairs(p.hunks) do
    add(('%s @@ hunk %d/%d, %s @@'):format(marker(decisions[h.index]), k, n, M.where(h)), 'hunk', h.index)
    starts[h.index] = #lines
    for _, l in ipairs(h.old_lines) do
      add('-' .. l, 'old', h.index)
    end
    for _, l in ipairs(h.new_lines) do
      add('+' .. l, 'new', h.index)
    end
  end
  return lines, { rows = rows, starts = starts }
end

--- The indices of the hunks accepted, in file order: what `aisci.resolveEdit` gets.
function M.accepted(p, decisions)
  local out = {}
  for _, h in ipairs(p.hunks) do
    if decisions[h.index] == 'accept' then
      table.insert(out, h.index)
    end
  end
  return out
end

--- The indices of the hunks not decided yet, in file order.
function M.undecided(p, decisions)
  local out = {}
  for _, h in ipairs(p.hunks) do
    if decisions[h.index] == nil then
      table.insert(out, h.index)
    end
  end
  return out
end

--- The first undecided hunk after hunk `index` in file order, wrapping around; nil
--- when every hunk is decided.
function M.next_undecided(p, decisions, index)
  local open = M.undecided(p, decisions)
  for _, i in ipairs(open) do
    if i > index then
      return i
    end
  end
  return open[1]
end

--- The line of the next (`dir` 1) or previous (-1) hunk header from line `lnum`; nil
--- when there is none that way.
function M.step(layout, lnum, dir)
  local best
  for _, l in pairs(layout.starts) do
    if (dir > 0 and l > lnum and (not best or l < best)) or (dir < 0 and l < lnum and (not best or l > best)) then
      best = l
    end
  end
  return best
end

--- What to tell the user about the server's answer `{ applied, rejected }`.
function M.summary(p, answer)
  local n, applied = #p.hunks, #(answer.applied or {})
  local file = vim.fs.basename(p.file)
  if applied == 0 then
    return ('applied none of the %s to %s'):format(plural(n, 'hunk'), file)
  end
  return ('applied %d of %s to %s; u undoes %s'):format(applied, plural(n, 'hunk'), file, applied == 1 and 'it' or 'them')
end

--- Marks for the target file's buffer: a sign on each line a hunk replaces or deletes
--- (on the line an insertion goes before), the hunk's number and state on its first.
--- @return { row: integer, sign: string, hl: string, text?: string }[]
function M.target_marks(p, decisions)
  local out, n = {}, #p.hunks
  for k, h in ipairs(p.hunks) do
    local text = ('aisci hunk %d/%d %s'):format(k, n, marker(decisions[h.index]))
    if #h.old_lines == 0 then
      table.insert(out, { row = h.start_line, sign = '+', hl = 'DiffAdd', text = text })
    else
      local deletion = #h.new_lines == 0
      for i = 1, #h.old_lines do
        table.insert(out, {
          row = h.start_line + i - 1,
          sign = deletion and '-' or '~',
          hl = deletion and 'DiffDelete' or 'DiffChange',
          text = i == 1 and text or nil,
        })
      end
    end
  end
  return out
end

local function notify(msg, level)
  vim.notify('aisci: ' .. msg, level or vim.log.levels.INFO)
end

--- Each pending proposal the plugin knows: { proposal, decisions, buf? } by id. The
--- decisions outlive a closed review window, so reopening it keeps them.
M.state = {}

local NS = vim.api.nvim_create_namespace('aisci-review')

local HL = { title = 'Title', help = 'Comment', hunk = 'DiffText', old = 'DiffDelete', new = 'DiffAdd' }
local MARK_HL = { accept = 'DiagnosticOk', reject = 'DiagnosticError' }

--- The loaded buffer of the proposal's file, if any (never loads or creates one).
local function target_buffer(p)
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(b) and (vim.api.nvim_buf_get_name(b) == p.file or vim.uri_from_bufnr(b) == p.uri) then
      return b
    end
  end
end

--- One namespace per proposal: two proposals for one file keep their own marks.
local function target_ns(id)
  return vim.api.nvim_create_namespace('aisci-review-' .. id)
end

local function clear_target(p)
  local b = target_buffer(p)
  if b then
    vim.api.nvim_buf_clear_namespace(b, target_ns(p.id), 0, -1)
  end
end

local function mark_target(s)
  local b = target_buffer(s.proposal)
  if not b then
    return
  end
  local ns = target_ns(s.proposal.id)
  vim.api.nvim_buf_clear_namespace(b, ns, 0, -1)
  local last = vim.api.nvim_buf_line_count(b) - 1
  for _, m in ipairs(M.target_marks(s.proposal, s.decisions)) do
    -- An insertion at the end of the file goes before a line that does not exist.
    vim.api.nvim_buf_set_extmark(b, ns, math.min(m.row, last), 0, {
      sign_text = m.sign,
      sign_hl_group = m.hl,
      virt_text = m.text and { { m.text, 'Comment' } } or nil,
    })
  end
end

--- Renders `s` into its buffer, with the highlights, and refreshes the target's marks.
local function draw(s)
  local buf = s.buf
  local lines, layout = M.render(s.proposal, s.decisions)
  vim.bo[buf].modifiable = true
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.bo[buf].modifiable = false
  s.layout = layout
  vim.api.nvim_buf_clear_namespace(buf, NS, 0, -1)
  for lnum, row in pairs(layout.rows) do
    vim.api.nvim_buf_set_extmark(buf, NS, lnum - 1, 0, { line_hl_group = HL[row.kind] })
    local d = row.kind == 'hunk' and s.decisions[row.hunk]
    if d then
      vim.api.nvim_buf_set_extmark(buf, NS, lnum - 1, 0, { end_col = #MARK[d], hl_group = MARK_HL[d], priority = 200 })
    end
  end
  mark_target(s)
end

--- The proposal is over: its buffer goes, the target's marks too, the plugin forgets it.
local function close(id)
  local s = M.state[id]
  if not s then
    return
  end
  M.state[id] = nil
  clear_target(s.proposal)
  if s.buf and vim.api.nvim_buf_is_valid(s.buf) then
    vim.api.nvim_buf_delete(s.buf, { force = true })
  end
end

--- Puts the cursor of `win` (the first window showing the review when nil) on a hunk.
local function goto_hunk(s, index, win)
  local lnum = index and s.layout.starts[index]
  win = win or vim.fn.bufwinid(s.buf)
  if lnum and win ~= -1 then
    vim.api.nvim_win_set_cursor(win, { lnum, 0 })
  end
end

local function hunk_at_cursor(s)
  local row = s.layout.rows[vim.api.nvim_win_get_cursor(0)[1]]
  return row and row.hunk
end

--- `a`/`x`: decides the hunk under the cursor, then moves to the next undecided one.
local function decide(s, d)
  local index = hunk_at_cursor(s)
  if not index then
    notify('put the cursor on a hunk', vim.log.levels.WARN)
    return
  end
  s.decisions[index] = d
  draw(s)
  goto_hunk(s, M.next_undecided(s.proposal, s.decisions, index) or index, 0)
end

--- `A`/`X`: decides every hunk not decided yet; the decided ones keep their decision.
local function decide_rest(s, d)
  for _, index in ipairs(M.undecided(s.proposal, s.decisions)) do
    s.decisions[index] = d
  end
  local at = vim.api.nvim_win_get_cursor(0)
  draw(s)
  vim.api.nvim_win_set_cursor(0, at)
end

--- `<CR>`/`s`: sends the accepted hunks. Undecided hunks would be rejected, which the
--- user confirms first (so a stray <CR> does not throw away work not looked at).
local function submit(s)
  local p = s.proposal
  local open = M.undecided(p, s.decisions)
  if #open > 0 then
    local msg = ('%s of %s undecided: reject %s and submit?'):format(plural(#open, 'hunk'), #p.hunks, #open == 1 and 'it' or 'them')
    if vim.fn.confirm(msg, '&Submit\n&Cancel', 2) ~= 1 then
      goto_hunk(s, open[1], 0)
      return
    end
  end
  -- A second submit before the answer would only earn "no such proposal".
  if s.sent then
    return
  end
  s.sent = true
  local args = { { id = p.id, accept = M.accepted(p, s.decisions) } }
  require('aisci').exec(target_buffer(p) or s.buf, 'aisci.resolveEdit', args, 'review of ' .. p.label, function(err, result)
    -- On an error (the proposal is gone: resolved elsewhere, cancelled) exec has said
    -- the server's message; nothing is left to review either way.
    if not err and type(result) == 'table' then
      notify(M.summary(p, result))
    end
    close(p.id)
  end)
end

local function keymaps(s)
  local buf = s.buf
  local function map(lhs, fn, desc)
    vim.keymap.set('n', lhs, fn, { buffer = buf, nowait = true, silent = true, desc = 'aisci review: ' .. desc })
  end
  local function jump(dir)
    return function()
      local lnum = vim.api.nvim_win_get_cursor(0)[1]
      for _ = 1, vim.v.count1 do
        lnum = M.step(s.layout, lnum, dir) or lnum
      end
      vim.api.nvim_win_set_cursor(0, { lnum, 0 })
    end
  end
  map(']h', jump(1), 'next hunk')
  map('[h', jump(-1), 'previous hunk')
  map('a', function()
    decide(s, 'accept')
  end, 'accept the hunk')
  map('x', function()
    decide(s, 'reject')
  end, 'reject the hunk')
  map('A', function()
    decide_rest(s, 'accept')
  end, 'accept every undecided hunk')
  map('X', function()
    decide_rest(s, 'reject')
  end, 'reject every undecided hunk')
  for _, lhs in ipairs({ '<CR>', 's' }) do
    map(lhs, function()
      submit(s)
    end, 'submit the decisions')
  end
  map('q', function()
    if not pcall(vim.cmd.close) then
      vim.api.nvim_buf_delete(buf, { force = true })
    end
  end, 'close (the edit stays pending)')
end

--- The review buffer of `s` (made on first use); closing its window wipes it, the
--- decisions stay in `s`.
local function review_buffer(s)
  if s.buf and vim.api.nvim_buf_is_valid(s.buf) then
    return s.buf
  end
  local buf = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_buf_set_name(buf, 'aisci://review/' .. s.proposal.id)
  vim.bo[buf].buftype = 'nofile'
  vim.bo[buf].bufhidden = 'wipe'
  vim.bo[buf].swapfile = false
  vim.bo[buf].filetype = 'aisci-review'
  s.buf = buf
  draw(s)
  keymaps(s)
  vim.api.nvim_create_autocmd('BufWipeout', {
    buffer = buf,
    callback = function()
      s.buf = nil
    end,
  })
  return buf
end

--- Shows proposal `p` in its review buffer, in a split below everything (reused when
--- already shown); the cursor goes there only with `focus`. Returns the buffer.
--- @param p table
--- @param focus boolean
--- @return integer bufnr
function M.show(p, focus)
  local s = M.state[p.id] or { decisions = {} }
  s.proposal = p
  M.state[p.id] = s
  local fresh = not (s.buf and vim.api.nvim_buf_is_valid(s.buf))
  local buf = review_buffer(s)
  if not fresh then
    draw(s)
  end
  local win = vim.fn.bufwinid(buf)
  if win == -1 then
    local height = math.max(5, math.min(#vim.api.nvim_buf_get_lines(buf, 0, -1, false), math.floor(vim.o.lines / 3)))
    win = vim.api.nvim_open_win(buf, false, { split = 'below', win = -1, height = height })
    vim.wo[win].wrap = false
    vim.wo[win].number = false
    vim.wo[win].relativenumber = false
    vim.wo[win].signcolumn = 'no'
    goto_hunk(s, M.undecided(p, s.decisions)[1] or (p.hunks[1] and p.hunks[1].index))
  end
  if focus then
    vim.api.nvim_set_current_win(win)
  end
  return buf
end

--- `aisci/editProposed`: the review opens without taking the cursor, so keys the user
--- is typing in their own window do not decide hunks they have not seen.
function M.proposed(p)
  M.show(p, false)
  vim.notify(('%s proposes %s to %s: review below (:AisciEdits)'):format(p.label, plural(#p.hunks, 'hunk'), vim.fs.basename(p.file)), vim.log.levels.INFO)
end

--- `aisci/editResolved`: the proposal is over elsewhere (a code action, a cancelled
--- job, a newer proposal); its review closes.
function M.resolved(result)
  local s = M.state[result.id]
  if not s then
    return
  end
  close(result.id)
  if result.reason == 'cancelled' or result.reason == 'superseded' then
    vim.notify(('%s: the proposed edit of %s was %s'):format(s.proposal.label, vim.fs.basename(s.proposal.file), result.reason), vim.log.levels.INFO)
  end
end

local function describe(p)
  return ('%s · %s · %s'):format(p.label, vim.fn.fnamemodify(p.file, ':~:.'), plural(#p.hunks, 'hunk'))
end

--- :AisciEdits: the pending proposals (`aisci.pendingEdits`); one opens at once, among
--- several the user picks. Proposals the server no longer has are forgotten.
function M.open()
  require('aisci').exec(0, 'aisci.pendingEdits', {}, 'pending edits', function(err, list)
    if err or type(list) ~= 'table' then
      return
    end
    local pending = {}
    for _, p in ipairs(list) do
      pending[p.id] = true
    end
    for id in pairs(M.state) do
      if not pending[id] then
        close(id)
      end
    end
    if #list == 0 then
      notify('no edit waits for review')
    elseif #list == 1 then
      M.show(list[1], true)
    else
      vim.ui.select(list, { prompt = 'Review which edit?', format_item = describe }, function(p)
        if p then
          M.show(p, true)
        end
      end)
    end
  end)
end

return M
