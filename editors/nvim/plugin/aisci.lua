-- The commands exist from startup; the server starts once require('aisci').setup() ran.
if vim.g.loaded_aisci then
  return
end
vim.g.loaded_aisci = true
require('aisci').create_commands()
