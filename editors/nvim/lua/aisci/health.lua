--- :checkhealth aisci — what the plugin and the server need on this machine: the server
--- binary and its version, the experiment interpreter, TeX tools, GPUs, Slurm, and which
--- API key variables are set. Key values are never read into messages, only whether a
--- variable is set.
local M = {}

--- Variables aisci reads keys from (model providers, then the literature engines).
M.key_vars = {
  'OPENAI_API_KEY',
  'ANTHROPIC_API_KEY',
  'DEEPSEEK_API_KEY',
  'OPENROUTER_API_KEY',
  'GEMINI_API_KEY',
  'GOOGLE_API_KEY',
  'S2_API_KEY',
  'OPENALEX_API_KEY',
}

--- First line of `cmd`'s output, or nil with the reason.
local function first_line(cmd)
  local ok, res = pcall(function()
    return vim.system(cmd, { text = true }):wait(10000)
  end)
  if not ok then
    return nil, tostring(res)
  end
  if res.code ~= 0 then
    return nil, vim.trim((res.stderr ~= '' and res.stderr) or res.stdout or ('exit ' .. res.code))
  end
  return vim.split(vim.trim(res.stdout ~= '' and res.stdout or res.stderr), '\n')[1]
end

local function tool(name, why, needed)
  local path = vim.fn.exepath(name)
  if path == '' then
    local report = needed and vim.health.error or vim.health.warn
    report(('%s not found on PATH (%s)'):format(name, why))
  else
    vim.health.ok(('%s: %s'):format(name, path))
  end
  return path ~= ''
end

function M.check()
  local aisci = require('aisci')
  vim.health.start('aisci: server')
  local cmd = aisci.config.cmd or { 'aisci', 'lsp' }
  local bin = vim.fn.exepath(cmd[1])
  if bin == '' then
    vim.health.error(('server binary %q not found'):format(cmd[1]), {
      'build it: cargo build --release -p aisci, and put target/release/aisci on PATH',
      "or point the plugin at it: require('aisci').setup({ cmd = { '/path/to/aisci', 'lsp' } })",
    })
  else
    local version, err = first_line({ bin, '--version' })
    if version then
      vim.health.ok(('%s (%s)'):format(version, bin))
    else
      vim.health.error(('%s --version failed: %s'):format(bin, err))
    end
  end
  vim.health.info('registered with ' .. (aisci.registration or 'nothing yet: call require("aisci").setup()'))
  local clients = vim.lsp.get_clients({ name = 'aisci' })
  vim.health.info(#clients == 0 and 'no aisci server is running in this session'
    or ('%d aisci server(s) running (root %s)'):format(#clients, clients[1].root_dir or '?'))

  vim.health.start('aisci: experiments')
  local python = vim.fn.exepath('python3')
  if python == '' then
    vim.health.error('python3 not found on PATH: experiments cannot run (set run.python to the interpreter)')
  else
    vim.health.ok(('%s (%s)'):format(first_line({ python, '--version' }) or 'python3', python))
  end
  if tool('nvidia-smi', 'no NVIDIA GPU: runs use the CPU slots', false) then
    local gpus = first_line({ 'nvidia-smi', '--query-gpu=name,memory.total', '--format=csv,noheader' })
    vim.health.info('GPU: ' .. (gpus or 'nvidia-smi did not list any'))
  end
  tool('sbatch', 'needed only with run.runner = "slurm"', false)

  vim.health.start('aisci: the paper')
  local latexmk = tool('latexmk', 'builds fall back to pdflatex and bibtex', false)
  tool('pdflatex', 'the paper cannot be built', true)
  tool('bibtex', 'citations cannot be resolved', not latexmk)
  tool('chktex', 'no LaTeX style advice', false)
  tool('pdftotext', 'the reviewer reads the LaTeX source instead of the PDF', false)

  vim.health.start('aisci: API keys (set or not; values are never shown)')
  local any = false
  for _, var in ipairs(M.key_vars) do
    local set = vim.env[var] ~= nil and vim.env[var] ~= ''
    any = any or set
    if set then
      vim.health.ok(var .. ' is set')
    else
      vim.health.info(var .. ' is not set')
    end
  end
  if not any then
    vim.health.warn('no API key variable is set: only local models (ollama, vllm, llama.cpp) and the replay model work')
  end
end

return M
