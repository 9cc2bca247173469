package browsertest

import (
	"encoding/json"
	"fmt"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
)

// SetValue sets the value of the form control sel as a user's edit would,
// with an input and a change event.
func SetValue(sel, v string) chromedp.Action[chromedp.Void] {
	js, _ := json.Marshal([]string{sel, v})
	return chromedp.Evaluate[chromedp.Void](`((a) => { const e = document.querySelector(a[0]); e.value = a[1];
		e.dispatchEvent(new Event("input", {bubbles: true})); e.dispatchEvent(new Event("change", {bubbles: true})); })(` + string(js) + `)`)
}

// KeyRow is the selector of the keys page's row of key id (its DOM
// contract: package keyspage).
func KeyRow(id uuid.UUID) string { return fmt.Sprintf(`tr[data-key-id="%s"]`, id) }

// KeyAction is the button of the keys page's row of key id for action:
// edit, disable, enable, rotate or delete.
func KeyAction(id uuid.UUID, action string) chromedp.CSS {
	return chromedp.CSS(KeyRow(id) + fmt.Sprintf(` button[data-action="%s"]`, action))
}
